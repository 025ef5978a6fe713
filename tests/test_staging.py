"""Staging an export through DuckDB's CSV reader gives exactly the rows (and errors) of the
reference reader, record by record in Python, whatever the file holds."""
import io
import os
import zipfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.core.workspace import Workspace
from pipelines.intake.export_reader import plan_inventory_export, read_inventory_export
from pipelines.intake.staging import stage_exports
from pipelines.intake.uploads import UnreadableExport
from pipelines.warehouse.connection import open_warehouse

COLUMNS = ["row_number", "serial", "mac", "model", "site", "room", "lens_device_id",
           "device_name", "last_seen"]
HEADERS = ["Serial Number", "MAC Address", "Hardware Model", "Site", "Room", "Device ID",
           "Note", "Note", "serial_number", "device_model", " model ", "zip_entry", "",
           "Device Type", "Seriennummer", "Gerätetyp", "Standort", "Last Detected",
           "Zuletzt gesehen"]
CELL = st.one_of(
    st.text(alphabet=st.sampled_from("ab1 é€=-+@.:"), max_size=8),  # mostly ordinary cells
    st.text(alphabet=st.sampled_from('ab1 \t,;"\r\n\x00é€\xa0\x85\u2028\u3000=-+@\x0b'),
            max_size=8))
HEADER = st.builds(lambda identity, model, extra, order: order(
    [identity, model, *extra]),
    st.sampled_from(["Serial Number", "MAC Address", "Device ID", "serial_number",
                     "Seriennummer", "MAC-Adresse"]),
    st.sampled_from(["Hardware Model", "device_model", " model ", "Device Type", "Modell"]),
    st.lists(st.sampled_from(HEADERS), max_size=4), st.randoms(use_true_random=False).map(
        lambda rng: lambda cells: rng.sample(cells, len(cells))))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    with open_warehouse(Workspace.resolve(tmp_path_factory.mktemp("staging"))) as con:
        yield con


def _staged_many(con, paths, scratch):
    """Each file's staged rows, or its error, staging all of them at once."""
    con.execute("DELETE FROM staged_inventory")
    outcome, plans = {}, []
    for path in paths:
        try:
            plans.append((str(path), plan_inventory_export(path, scratch)))
        except UnreadableExport as error:
            outcome[str(path)] = str(error)
    rows, failed = stage_exports(con, plans)
    for snapshot_id, error in failed.items():
        outcome[snapshot_id] = str(error)
    for snapshot_id, count in rows.items():
        frame = con.execute(f"SELECT {', '.join(COLUMNS)} FROM staged_inventory "
                            f"WHERE snapshot_id = ? ORDER BY row_number", [snapshot_id]).df()
        assert len(frame) == count
        outcome[snapshot_id] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    assert con.execute("SELECT count(DISTINCT snapshot_id) FROM staged_inventory").fetchone()[0] \
        == len([r for r in rows.values() if r])  # nothing staged for an unreadable export
    return [outcome[str(path)] for path in paths]


def _staged(con, path):
    return _staged_many(con, [path], path.parent)[0]


def _reference(path):
    try:
        frame = read_inventory_export(path).rows
    except UnreadableExport as error:
        return str(error)
    return frame[COLUMNS].astype(object).where(frame[COLUMNS].notna(), None).to_dict("records")


def _csv(header, rows, separator, line_end):
    return line_end.join(separator.join(cells) for cells in [header, *rows]) + line_end


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(table=st.one_of(HEADER, st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6)
                      ).flatmap(lambda header: st.tuples(st.just(header), st.lists(st.one_of(
                          st.lists(CELL, min_size=len(header), max_size=len(header)),
                          st.lists(CELL, max_size=7)), max_size=6))),
       separator=st.sampled_from([",", ";", "\t"]),
       line_end=st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
       zipped=st.booleans())
@example(table=(["Serial Number", "Hardware Model", "Note"], [["A1", "Poly X", "=1+2"]]),
         separator=",", line_end="\n", encoding="utf-8", zipped=False)
def test_duckdb_staging_matches_the_reference_reader(warehouse, tmp_path_factory, table,
                                                      separator, line_end, encoding, zipped):
    text = _csv(*table, separator, line_end)
    data = text.encode(encoding, "replace")
    path = tmp_path_factory.mktemp("fuzz") / ("export.zip" if zipped else "export.csv")
    if zipped:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("devices.csv", data)
        data = buffer.getvalue()
    path.write_bytes(data)
    assert _staged(warehouse, path) == _reference(path)


def test_a_clean_export_is_read_by_duckdb(warehouse, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Serial Number,Hardware Model,Site,Extra\n"
                    + "".join(f" sn{i} ,Poly Studio X30,Köln,x{i}\n" for i in range(500)),
                    encoding="utf-8")
    rows = _staged(warehouse, path)
    assert warehouse.execute("SELECT count(*) FROM export_cells").fetchone()[0] == 500  # DuckDB
    assert rows == _reference(path)
    assert rows[0] == {"row_number": 2, "serial": "sn0", "mac": None,
                       "model": "Poly Studio X30", "site": "Köln", "room": None,
                       "lens_device_id": None, "device_name": None, "last_seen": None}
    # The column the pipeline does not use stays in the archived file only.
    assert "Extra" not in str(rows)
    assert "x0" not in str(rows)


def test_blank_lines_and_quoted_line_breaks_keep_spreadsheet_row_numbers(warehouse, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Serial,Model,Room\n\nA1,Poly Studio X30,"Room\n4"\n,,\nA2,Poly Trio,R\n',
                    encoding="utf-8")
    rows = _staged(warehouse, path)
    assert rows == _reference(path)
    assert [(r["row_number"], r["serial"], r["room"]) for r in rows] == [
        (3, "A1", "Room\n4"), (5, "A2", "R")]


def test_exports_of_one_layout_are_read_together_and_a_bad_one_alone(warehouse, tmp_path):
    header = "Serial Number;Hardware Model;Site\n"
    texts = [header + "".join(f"S{n}x{i};Poly Trio 8800;Site {i}\n" for i in range(3))
             for n in range(4)]
    texts[2] = header + "S1;Poly Trio 8800;A;surplus cell\nS2;Poly Trio 8800;B\n"  # ragged
    texts.append(header + "S1;Poly Trio 8800;A\n\nS2;Poly Trio 8800;B\n")  # a blank line
    paths = []
    for n, text in enumerate(texts):
        paths.append(tmp_path / f"export-{n}.csv")
        paths[-1].write_text(text, encoding="utf-8")
    assert _staged_many(warehouse, paths, tmp_path) == [_reference(path) for path in paths]
    assert [r["row_number"] for r in _reference(paths[4])] == [2, 4]


def test_an_unreadable_second_zip_entry_leaves_nothing_staged(warehouse, tmp_path):
    path = tmp_path / "exports.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "Serial,Model\nA1,Poly Studio X30\n")
        archive.writestr("b.csv", "Name,Room\nx,y\n")
    assert "no model column" in _staged(warehouse, path)
