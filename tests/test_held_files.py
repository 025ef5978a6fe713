"""Inputs checked against their own evidence (issue 28): a file whose own dates, bytes,
modification time or serials contradict the month it would be taken for is held — kept in
quarantine/ with its reason, nothing loaded — while other files and customers go on.

Each slip is the one a new partner's operations staff made, through the real CLI, with files
shaped as Lens and partners write them:
- Lens UI device export: the demo's "lens-ui" style (pipelines/demo/exports.py: semicolons,
  UTF-8 with BOM, CRLF, "Device Type" as Lens's docs label the model column), whose
  "Last Detected" column is "the last date that Poly Lens connected with the Device" (Lens's
  docs, info.lens.poly.com/docs/deviceusers/device-users-overview);
- a German partner's own list: the demo's "partner-german" style (Windows-1252, no Lens ids),
  with "Zuletzt gesehen" as DD.MM.YYYY where it has one;
- an export of Lens API fields: `lastDetected` as the recorded API page has it
  (tests/fixtures/lens/polylens2otel-devicesearch.json: "2026-08-12T09:18:43.740Z");
- models as Lens names them (pipelines/demo/customers.py, data/product_catalog.csv); serials
  of the demo generator's alphabet; the Excel damage as issue 28 quotes it ("2,01235E+11").
"""
from __future__ import annotations

import csv
import io
import os
import random
import shutil
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import duckdb
import pytest
from builders import cli, contract, make_workspace, reconciliation, row_for, warehouse_rows

from pipelines.core.months import Month, month_in_name, renamed_for
from pipelines.demo.exports import SERIAL_CHARS, STYLES

HEADSETS = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}}
LENS_UI = STYLES["lens-ui"]
GERMAN = STYLES["partner-german"]
HEADSET_MODEL = "Voyager Focus 2 Series"


def _serials(count: int, seed: int) -> list[str]:
    """Serials as the demo generator draws them (pipelines/demo/exports.py), 12 characters;
    the first n of a seed are the same whatever the count."""
    rng = random.Random(seed)
    return ["".join(rng.choice(SERIAL_CHARS) for _ in range(12)) for _ in range(count)]


def _csv(rows: list[list[str]], separator: str, line_end: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator=line_end).writerows(rows)
    return buffer.getvalue()


def lens_ui_export(serials: list[str], month: str, model: str = HEADSET_MODEL) -> bytes:
    """A Lens UI device export of headsets last detected in `month` (days 3..27)."""
    rows = [[header for header, _ in LENS_UI.columns]]
    for i, serial in enumerate(serials):
        rows.append([model.removesuffix(" Series"), serial, "", model, "Berlin", "",
                     str(uuid.uuid5(uuid.NAMESPACE_OID, serial)),
                     f"{month}-{3 + i % 25:02d} {8 + i % 10:02d}:{i % 60:02d}"])
    return _csv(rows, LENS_UI.separator, LENS_UI.line_end).encode(LENS_UI.encoding)


def german_list(serials: list[str], seen: str | None = None) -> bytes:
    """A German partner's own list (Excel, Windows-1252); "Zuletzt gesehen" when `seen`."""
    header = [name for name, _ in GERMAN.columns] + (["Zuletzt gesehen"] if seen else [])
    rows = [header] + [[serial, "", HEADSET_MODEL, "München", ""] + ([seen] if seen else [])
                       for serial in serials]
    return _csv(rows, GERMAN.separator, GERMAN.line_end).encode(GERMAN.encoding)


def put(workspace, customer: str, name: str, data: bytes, mtime: float | None = None) -> Path:
    folder = workspace.inbox / customer
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    mtime = datetime.now(UTC).timestamp() - 60 if mtime is None else mtime
    os.utime(path, (mtime, mtime))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def _run(workspace, month: str, capsys) -> str:
    assert cli(workspace, "run", "--month", month) == 0
    return capsys.readouterr().out


def _status(workspace, capsys) -> str:
    assert cli(workspace, "status") == 0
    return capsys.readouterr().out


def _intake(workspace, name: str) -> list[tuple]:
    return warehouse_rows(workspace, "SELECT outcome, month, stored_path FROM intake_log "
                                     "WHERE file_name = ? ORDER BY receipt_seq", [name])


def _mail_body(path: Path) -> str:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def reported(tmp_path, capsys):
    """October and November reported to the CSM: October OK (100 headsets), November a
    true-up of 10 headsets (20.00 EUR); a second customer beside it."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS),
                                          contract("bolt", categories=HEADSETS)])
    october, november = _serials(100, 1), _serials(110, 1)
    put(workspace, "acme", "Inventar Oktober 2026.csv", lens_ui_export(october, "2026-10"))
    _run(workspace, "2026-10", capsys)
    put(workspace, "acme", "Inventar November 2026.csv", lens_ui_export(november, "2026-11"))
    out = _run(workspace, "2026-11", capsys)
    assert "True-up acme Headsets: +10 devices, 20.00 EUR" in out
    return workspace


def test_a_copy_under_another_months_name_is_held_and_october_stays_as_sent(reported, capsys):
    workspace = reported
    november = (workspace.archive / "acme/2026-11/Inventar November 2026.csv").read_bytes()
    before = {folder: _files(workspace.home / folder)
              for folder in ("reports/2026-10", "outbox/2026-10", "archive/acme/2026-10")}
    sent_for_november = set(_files(workspace.outbox / "2026-11"))
    # The slip: November's export copied into the inbox under October's name, next to an
    # ordinary upload of another customer.
    put(workspace, "acme", "Inventar Oktober 2026 (2).csv", november)
    put(workspace, "bolt", "Inventar November 2026.csv", lens_ui_export(_serials(7, 2),
                                                                         "2026-11"))
    out = _run(workspace, "2026-11", capsys)

    line = next(x for x in out.splitlines() if "held inbox/acme/Inventar Oktober 2026 (2).csv"
                in x)
    assert "last seen as late as 2026-11-27" in line
    assert "the inventory of 2026-11, not of 2026-10" in line
    assert "rename it to 'Inventar 2026-11 (2).csv'" in line
    assert "Held: 1 file waits in quarantine/" in out
    assert "True-up acme Headsets: +10 devices, 20.00 EUR" in out  # November's stands
    assert row_for(reconciliation(workspace, "2026-11"), "bolt", "headset")[
        "devices_counted"] == "7"  # the other customer went on
    held = workspace.quarantine / "acme" / "Inventar Oktober 2026 (2).csv"
    assert held.read_bytes() == november
    reason = held.with_name(held.name + ".reason.txt").read_text(encoding="utf-8")
    assert "Inventar 2026-11 (2).csv" in reason
    assert "approve --file" in reason
    assert _intake(workspace, held.name) == [
        ("held", "2026-10", "quarantine/acme/Inventar Oktober 2026 (2).csv")]
    # October's files, result and e-mails are as they were; November got no correction, and
    # the partner's staff a notice of the held file.
    assert {folder: _files(workspace.home / folder) for folder in before} == before
    new = {name for name in set(_files(workspace.outbox / "2026-11")) - sent_for_november
           if "-acme-" in name}
    assert [name.split("-")[0] for name in new] == ["file_rejected"]
    notice = _mail_body(workspace.outbox / "2026-11" / new.pop())
    assert "Inventar 2026-11 (2).csv" in notice
    status = _status(workspace, capsys)
    assert "Held files waiting (1: " in status
    assert "quarantine/acme/Inventar Oktober 2026 (2).csv" in status

    # Renamed as the reason says, it is November's export again: a duplicate, nothing changes.
    shutil.move(held, workspace.inbox / "acme" / "Inventar 2026-11 (2).csv")
    out = _run(workspace, "2026-11", capsys)
    assert "1 duplicate" in out
    assert "Held files waiting" not in _status(workspace, capsys)


def test_without_dates_a_copy_for_a_reported_month_is_held_by_its_bytes(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Geräteliste 10.2026.csv", german_list(_serials(100, 3)))
    _run(workspace, "2026-10", capsys)
    november = german_list(_serials(110, 3))
    put(workspace, "acme", "Geräteliste 11.2026.csv", november)
    _run(workspace, "2026-11", capsys)
    put(workspace, "acme", "Geräteliste 10.2026 Kopie.csv", november)
    out = _run(workspace, "2026-11", capsys)
    line = next(x for x in out.splitlines() if "held inbox/acme/Geräteliste 10.2026 Kopie.csv"
                in x)
    assert "the same content as the snapshot of 2026-11" in line
    assert "2026-10 was already reported" in line
    assert row_for(reconciliation(workspace, "2026-10"), "acme", "headset")[
        "devices_counted"] == "100"
    assert not list((workspace.outbox / "2026-10").glob("correction-*"))


def test_identical_bytes_for_a_month_not_yet_reported_stay_a_snapshot(tmp_path, capsys):
    """A small, stable customer's export can be identical two months running."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    same = german_list(_serials(6, 4))
    put(workspace, "acme", "Geräteliste 10.2026.csv", same)
    _run(workspace, "2026-10", capsys)
    put(workspace, "acme", "Geräteliste 11.2026.csv", same)
    out = _run(workspace, "2026-11", capsys)
    assert "held" not in out
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "headset")[
        "devices_counted"] == "6"


def test_german_last_seen_dates_are_evidence_too(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Geräteliste Oktober 2026.csv",
        german_list(_serials(8, 5), seen="14.11.2026"))
    out = _run(workspace, "2026-10", capsys)
    assert "last seen as late as 2026-11-14" in out
    assert "rename it to 'Geräteliste 2026-11.csv'" in out
    assert row_for(reconciliation(workspace, "2026-10"), "acme", "headset")["status"] \
        == "NO_DATA"


def test_last_seen_dates_are_read_where_duckdb_declines_the_file(tmp_path, capsys):
    """A cell with a line break (quoted, as Lens's CSV writer quotes it) sends the file to the
    reference reader (intake/staging.py): its dates are evidence all the same."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    text = lens_ui_export(_serials(15, 11), "2026-11").decode(LENS_UI.encoding)
    text = text.replace(";Berlin;", ';"Berlin\nHaus 2";', 1)
    put(workspace, "acme", "Inventar Oktober 2026.csv", text.encode(LENS_UI.encoding))
    out = _run(workspace, "2026-10", capsys)
    assert "held inbox/acme/Inventar Oktober 2026.csv" in out
    assert "last seen as late as 2026-11-17" in out


def test_lens_api_last_detected_within_the_pull_window_is_that_months(tmp_path, capsys):
    """An export made on 3 November of October's inventory shows devices detected up to
    then: within `lens.pull_window_days` it is October's, as a Lens pull would be."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    header = ["id", "name", "serialNumber", "hardwareModel", "lastDetected"]
    rows = [header] + [[f"{i:012x}", "Voyager Focus 2", serial, HEADSET_MODEL,
                        "2026-11-03T09:18:43.740Z" if i == 0 else "2026-10-20T07:00:00.000Z"]
                       for i, serial in enumerate(_serials(5, 6))]
    put(workspace, "acme", "lens-devices-2026-10.csv", _csv(rows, ",", "\n").encode())
    _run(workspace, "2026-10", capsys)
    assert row_for(reconciliation(workspace, "2026-10"), "acme", "headset")[
        "devices_counted"] == "5"


def test_an_export_dated_file_lands_in_the_month_before(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "PolyLens_Inventory_2026-12-01.csv",
        lens_ui_export(_serials(9, 7), "2026-11"))
    out = _run(workspace, "2026-11", capsys)
    assert "held" not in out
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "headset")[
        "devices_counted"] == "9"
    assert _intake(workspace, "PolyLens_Inventory_2026-12-01.csv")[0][:2] == (
        "loaded", "2026-11")


def test_a_month_from_a_modification_time_follows_the_same_rule(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    third = datetime(2026, 12, 3, 9, tzinfo=UTC).timestamp()
    put(workspace, "acme", "Geräteliste.csv", german_list(_serials(4, 8)), mtime=third)
    out = _run(workspace, "2026-11", capsys)
    assert "the name holds no month, so it was taken for 2026-11" in out
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "headset")[
        "devices_counted"] == "4"


@pytest.mark.parametrize(("when", "words"), [
    (datetime(2027, 3, 1, 9, tzinfo=UTC), "last changed 2027-03-01 09:00 UTC, in the future"),
    (datetime(2019, 5, 6, 9, tzinfo=UTC), ("last changed 2019-05-06 09:00 UTC, before the "
                                           "customer's first term (from 2026-01-01)")),
])
def test_a_modification_time_in_the_future_or_before_every_term_is_held(tmp_path, capsys,
                                                                         when, words):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Geräteliste.csv", german_list(_serials(4, 9)),
        mtime=when.timestamp())
    out = _run(workspace, "2026-11", capsys)
    line = next(x for x in out.splitlines() if "held inbox/acme/Geräteliste.csv" in x)
    assert words in line
    assert "put the month in its name (e.g. 'Geräteliste YYYY-MM.csv')" in line
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    con.close()
    assert "quarantine/acme/Geräteliste.csv" in _status(workspace, capsys)
    # Renamed with its month, it is taken.
    held = workspace.quarantine / "acme" / "Geräteliste.csv"
    shutil.move(held, workspace.inbox / "acme" / "Geräteliste 2026-11.csv")
    _run(workspace, "2026-11", capsys)
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "headset")[
        "devices_counted"] == "4"


# Six headsets with twelve-digit serials, as a spreadsheet saves them after showing them as
# numbers: German Excel "2,01235E+11", English "2.01235E+11"; six devices became four.
EXCEL_SERIALS = ["2,01235E+11", "2,01235E+11", "2,01235E+11", "2,01236E+11", "2.01237E+11",
                 "2.01238E+11"]


def test_excel_damaged_serials_are_held_never_undercounted(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Inventar 2026-11.csv", german_list(EXCEL_SERIALS))
    out = _run(workspace, "2026-11", capsys)
    line = next(x for x in out.splitlines() if "held inbox/acme/Inventar 2026-11.csv" in x)
    assert "6 serials were turned into numbers by a spreadsheet (row 2: '2,01235E+11')" in line
    assert "re-export from Lens without opening it in Excel" in line
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "headset")["status"] \
        == "NO_DATA"


def test_serials_that_lost_their_leading_zeros_are_held(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    serials = [f"00{20123456780 + i}" for i in range(6)] + _serials(2, 10)
    put(workspace, "acme", "Inventar 2026-10.csv", german_list(serials))
    _run(workspace, "2026-10", capsys)
    damaged = [s.lstrip("0") for s in serials[:6]] + serials[6:]
    put(workspace, "acme", "Inventar 2026-11.csv", german_list(damaged))
    out = _run(workspace, "2026-11", capsys)
    line = next(x for x in out.splitlines() if "held inbox/acme/Inventar 2026-11.csv" in x)
    assert "6 serials were turned into numbers by a spreadsheet (row 2: '20123456780')" in line


def test_approve_puts_a_held_file_back_and_it_is_taken_as_named(reported, capsys):
    workspace = reported
    november = (workspace.archive / "acme/2026-11/Inventar November 2026.csv").read_bytes()
    put(workspace, "acme", "Inventar Oktober 2026 (2).csv", november)
    _run(workspace, "2026-11", capsys)
    held = "quarantine/acme/Inventar Oktober 2026 (2).csv"
    assert cli(workspace, "approve", "--file", held) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [(f"approved {held}: put back as inbox/acme/Inventar Oktober 2026 (2).csv; "
                    f"the next run takes it for 2026-10 without the check that held it")]
    assert (workspace.inbox / "acme" / "Inventar Oktober 2026 (2).csv").read_bytes() == november
    assert "Held files waiting" not in _status(workspace, capsys)
    # The operator vouched for it: October is reconciled again with it.
    _run(workspace, "2026-11", capsys)
    assert _intake(workspace, "Inventar Oktober 2026 (2).csv")[-1][:2] == ("loaded", "2026-10")
    assert row_for(reconciliation(workspace, "2026-10"), "acme", "headset")[
        "devices_counted"] == "110"
    # Not (or no longer) a held file: one line, exit 2.
    assert cli(workspace, "approve", "--file", held) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "is not a held file" in err[0]
    # A rebuild takes the archived files as they were taken: the approved one is not held again.
    assert cli(workspace, "rebuild") == 0
    assert row_for(reconciliation(workspace, "2026-10"), "acme", "headset")[
        "devices_counted"] == "110"
    assert "Held files waiting" not in _status(workspace, capsys)


@pytest.mark.parametrize(("name", "window", "month"), [
    ("PolyLens_Inventory_2026-12-01.csv", 10, "2026-11"),
    ("PolyLens_Inventory_2026-12-10.csv", 10, "2026-11"),
    ("PolyLens_Inventory_2026-12-11.csv", 10, "2026-12"),
    ("PolyLens_Inventory_2026-12-01.csv", 0, "2026-12"),
    ("Inventar 01.12.2026.csv", 10, "2026-11"),
    ("lens-2026-12.csv", 10, "2026-12"),
    ("inventory 2026-10 exported 2026-11-20.csv", 10, "2026-10"),  # the first YYYY-MM
    ("lens-2026-02-30.csv", 10, "2026-02"),  # no such day: the month
])
def test_a_full_date_in_a_name_is_the_export_date(name, window, month):
    assert str(month_in_name(name, window)) == month


@pytest.mark.parametrize(("name", "renamed"), [
    ("Inventar Oktober 2026 (2).csv", "Inventar 2026-11 (2).csv"),
    ("PolyLens_Inventory_2026-12-01.csv", "PolyLens_Inventory_2026-11.csv"),
    ("Geräteliste.csv", "Geräteliste 2026-11.csv"),
])
def test_the_name_a_held_file_is_told_to_take(name, renamed):
    assert renamed_for(name, Month(2026, 11)) == renamed
