"""A corpus of hostile and odd uploads: each is loaded with an exact device count or quarantined
with a reason naming the problem, and every input ends up byte for byte in archive/quarantine."""
import codecs
import functools
import io
import os
import time
import zipfile
from pathlib import Path

import duckdb
import pytest
from builders import build_once, cli, contract, make_workspace
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.core.workspace import Workspace
from pipelines.intake.export_reader import read_inventory_export, read_rma_log
from pipelines.intake.uploads import UnreadableExport

GOOD = ("serial_number,device_model,site_name\nA1,Poly Studio X30,Berlin\n"
        "A2,Poly Studio X30,Köln\nA3,Polycom VVX 450,Bonn\n")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 3, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _marked_encrypted(blob: bytes) -> bytes:
    """Set the "encrypted" flag in every local and central header (zipfile cannot write it)."""
    data = bytearray(blob)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + flag_offset] |= 0x01
            start = data.find(signature, start + 4)
    return bytes(data)


@functools.cache
def _bomb() -> bytes:
    """A megabyte that expands to a gigabyte of zeros: seconds to build, so built when a test
    first needs it, not when each pytest process collects this module."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("devices.csv", "w", force_zip64=True) as entry:
        block = b"serial_number,device_model\n" + b"\0" * (1 << 20)
        for _ in range(1024):
            entry.write(block)
    return buffer.getvalue()


# name -> (bytes, or a function making them; expected): ("loaded", devices) or
# ("quarantined", words of the reason). `content(name)` gives the bytes.
CORPUS = {
    "plain-comma.csv": (GOOD.encode(), ("loaded", 3)),
    "semicolon-bom.csv": (codecs.BOM_UTF8 + GOOD.replace(",", ";").encode(), ("loaded", 3)),
    "tab-utf16le-bom.csv": (codecs.BOM_UTF16_LE + GOOD.replace(",", "\t").encode("utf-16-le"),
                            ("loaded", 3)),
    "utf16be-bom.csv": (codecs.BOM_UTF16_BE + GOOD.encode("utf-16-be"), ("loaded", 3)),
    "utf16le-no-bom.csv": (GOOD.encode("utf-16-le"), ("loaded", 3)),
    "windows-1252.csv": (GOOD.replace("Köln", "Zürich München").encode("cp1252"), ("loaded", 3)),
    "quoted-separators-and-breaks.csv": (
        (b'serial_number,device_model,site_name\r\nQ1,"Poly Studio X30","Berlin, Haus 2"\r\n'
        b'Q2,"Poly Studio X30","two\nlines"\r\n'), ("loaded", 2)),
    "trailing-separators.csv": (GOOD.replace("\n", ",,\n").encode(), ("loaded", 3)),
    "blank-lines-crlf.csv": (GOOD.replace("\n", "\r\n\r\n").encode(), ("loaded", 3)),
    "header-only.csv": (b"serial_number,device_model\n", ("loaded", 0)),
    "rejected-rows.csv": ((b"serial_number,device_model\nR1,Poly Studio X30\n,Poly Studio X30\n"
                          b"R3,\nr1 ,Poly Studio X30\n"), ("loaded", 1)),
    "duplicate-headers.csv": (b"Serial,Serial,Model\nD1,X,Poly Studio X30\nD2,Y,Poly Studio X30\n",
                              ("loaded", 2)),
    "Geräteliste März 2026-03 (final).csv": (GOOD.encode(), ("loaded", 3)),
    "empty.csv": (b"", ("quarantined", "the file is empty")),
    "only-blank-lines.csv": (b"\n\n  \n", ("quarantined", "the file is empty")),
    "no-model-column.csv": (b"serial_number,site_name\nA1,Berlin\n",
                            ("quarantined", "no model column")),
    "no-identity-column.csv": (b"device_model,site_name\nPoly Studio X30,Berlin\n",
                               ("quarantined", "no device identity column")),
    "picture.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ("quarantined", "binary data")),
    "workbook.xlsx": (_zip({"[Content_Types].xml": b"<xml/>"}),
                      ("quarantined", "spreadsheet workbook")),
    "export-one.zip": (_zip({"devices.csv": GOOD.encode()}), ("loaded", 3)),
    "export-two.zip": (_zip({"a/site1.csv": GOOD.encode(),
                             "site2.csv": b"serial_number,device_model\nB1,Poly G7500\n"
                                          b"B2,Poly G7500\n",
                             "__MACOSX/._site2.csv": b"junk", "readme.pdf": b"%PDF"}),
                       ("loaded", 5)),
    "traversal.zip": (_zip({"../../../escaped.csv": GOOD.encode()}), ("loaded", 3)),
    "absolute.zip": (_zip({"/tmp/polyrecon-absolute.csv": GOOD.encode()}), ("loaded", 3)),
    "bomb.zip": (_bomb, ("quarantined", "possible zip bomb")),
    "no-csv-inside.zip": (_zip({"report.pdf": b"%PDF-1.4"}), ("quarantined", "holds no CSV")),
    "encrypted.zip": (_marked_encrypted(_zip({"devices.csv": GOOD.encode()})),
                      ("quarantined", "is encrypted")),
    "truncated.zip": (_zip({"devices.csv": GOOD.encode() * 50})[:120],
                      ("quarantined", "damaged")),
    "many-entries.zip": (_zip({f"part-{i}.csv": GOOD.encode() for i in range(101)}),
                         ("quarantined", "101 entries")),
    "endless-line.csv": (b"serial_number,device_model\n" + b"x" * 1_200_000 + b"\n",
                         ("quarantined", "line 2 is longer than 1,000,000 characters")),
    "huge-field.csv": (b'serial_number,device_model\n"' + b"y,\n" * 60_000 + b'",Poly G7500\n',
                       ("quarantined", "the CSV structure is broken")),
    "thousands-of-columns.csv": (b"serial_number,device_model" + b",x" * 3000 + b"\n",
                                 ("quarantined", "3,002 columns")),
    "undefined-cp1252-bytes.csv": (b"serial_number,device_model\nA1,Poly \x81\x8d Studio\n",
                                   ("quarantined", "not valid cp1252")),
    "rma-bad-rows.csv": ((b"rma_number,date,serial,model\nR-1,2026-03-02,S1,Poly Voyager Focus 2\n"
                         b",2026-03-02,S2,Poly Voyager Focus 2\nR-3,2026/03/02,S3,Poly Sync 20\n"),
                         ("loaded", None)),
    "rma-no-date-column.csv": (b"rma_number,serial,model\nR-1,S1,Poly Voyager Focus 2\n",
                               ("quarantined", "no 'date' column")),
}


def content(name: str) -> bytes:
    data, _ = CORPUS[name]
    return data() if callable(data) else data


def _corpus_run(root: Path) -> None:
    """The corpus (and links, a pipe, folders, misplaced files) taken in by `ingest`; how long
    that took is kept beside it."""
    root.mkdir(parents=True)
    workspace = make_workspace(root / "ws", [contract("acme")])
    folder = workspace.inbox / "acme"
    folder.mkdir(parents=True)
    outside = root / "outside.csv"
    outside.write_bytes(GOOD.encode())
    for name in CORPUS:
        (folder / name).write_bytes(content(name))
    os.symlink(outside, folder / "link-to-outside.csv")
    os.mkfifo(folder / "pipe.csv")
    (folder / "subfolder").mkdir()
    (folder / "subfolder" / "inner.csv").write_bytes(GOOD.encode())
    (workspace.inbox / "ghost").mkdir()
    (workspace.inbox / "ghost" / "no-contract.csv").write_bytes(GOOD.encode())
    (workspace.inbox / "top-level.csv").write_bytes(GOOD.encode())
    started = time.monotonic()
    assert cli(workspace, "ingest") == 0
    (root / "seconds").write_text(repr(time.monotonic() - started))


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    """`_corpus_run` made once per session (whichever xdist worker asks first), never changed
    by a test: the workspace, its folder, the file outside it a link points to, seconds."""
    root = build_once(tmp_path_factory, "hostile-inbox-corpus", _corpus_run)
    return (Workspace.resolve(root / "ws"), root, root / "outside.csv",
            float((root / "seconds").read_text()))


def _outcome(workspace, name):
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT l.outcome, l.stored_path, l.reason, "
            "(SELECT count(*) FROM snapshot_devices d JOIN snapshots s USING (snapshot_id) "
            " WHERE s.receipt_seq = l.receipt_seq) FROM intake_log l WHERE l.file_name = ?",
            [name]).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_file_has_its_exact_outcome_and_is_kept_byte_for_byte(corpus_run, name):
    workspace, *_ = corpus_run
    _, (outcome, expected) = CORPUS[name]
    [(found, stored, reason, devices)] = _outcome(workspace, name)
    assert found == outcome, reason
    if outcome == "loaded":
        assert stored.startswith("archive/acme/")
        if expected is not None:
            assert devices == expected
    else:
        assert stored.startswith("quarantine/acme/")
        assert expected in reason
        reason_file = (workspace.home / stored).with_name(Path(stored).name + ".reason.txt")
        assert expected in reason_file.read_text()
    assert (workspace.home / stored).read_bytes() == content(name)


def test_rejected_rows_are_listed_with_their_reason(corpus_run):
    workspace, *_ = corpus_run
    text = (workspace.quarantine / "acme" / "rejected-rows.csv.rejected.csv").read_text()
    assert text.splitlines() == [
        "row,reason,serial,mac,model,site,room,lens_device_id,device_name",
        '3,"no serial number, MAC address or Lens device id",,,Poly Studio X30,,,,',
        "4,no model,R3,,,,,,"]
    rma = (workspace.quarantine / "acme" / "rma-bad-rows.csv.rejected.csv").read_text()
    assert rma.splitlines() == ["row,reason,rma_number,date,serial,model",
                                "3,no RMA number,,2026-03-02,S2,Poly Voyager Focus 2",
                                "4,no date in the form YYYY-MM-DD (or DD.MM.YYYY),R-3,2026/03/02,"
                                "S3,Poly Sync 20"]


def test_links_pipes_folders_and_misplaced_files_are_quarantined_untouched(corpus_run):
    workspace, root, outside, _ = corpus_run
    quarantine = workspace.quarantine
    link = quarantine / "acme" / "link-to-outside.csv"
    assert link.is_symlink()
    assert os.readlink(link) == str(outside)
    assert outside.read_bytes() == GOOD.encode()
    assert "link" in (quarantine / "acme" / "link-to-outside.csv.reason.txt").read_text()
    assert (quarantine / "acme" / "pipe.csv").is_fifo()
    assert "not a regular file" in (quarantine / "acme" / "pipe.csv.reason.txt").read_text()
    assert (quarantine / "acme" / "subfolder" / "inner.csv").read_bytes() == GOOD.encode()
    assert "folder" in (quarantine / "acme" / "subfolder.reason.txt").read_text()
    assert "no customer 'ghost'" in (quarantine / "ghost" / "no-contract.csv.reason.txt"
                                     ).read_text()
    assert (quarantine / "_no-customer" / "top-level.csv").read_bytes() == GOOD.encode()
    # Nothing left behind, nothing escaped from a zip.
    assert [p for p in workspace.inbox.rglob("*") if p.is_file()] == []
    assert not list(root.rglob("escaped.csv"))
    assert not Path("/tmp/polyrecon-absolute.csv").exists()


def test_the_zip_bomb_costs_seconds_not_minutes(corpus_run):
    *_, seconds = corpus_run
    assert seconds < 60  # generous: the whole corpus, a gigabyte bomb included


def test_a_crash_after_the_claim_loses_nothing(tmp_path):
    """A run killed after claiming (file in inbox/.claimed) or after committing (not yet
    archived): the next run finishes the work, once."""
    workspace = make_workspace(tmp_path, [contract("acme")])
    claimed = workspace.inbox / ".claimed" / "acme"
    claimed.mkdir(parents=True)
    (claimed / "lens-2026-03.csv").write_bytes(GOOD.encode())
    assert cli(workspace, "ingest") == 0
    assert (workspace.archive / "acme/2026-03/lens-2026-03.csv").read_bytes() == GOOD.encode()
    # Committed but not moved: the same bytes reappear in .claimed; they go where recorded.
    (workspace.archive / "acme/2026-03/lens-2026-03.csv").rename(claimed / "lens-2026-03.csv")
    assert cli(workspace, "ingest") == 0
    assert (workspace.archive / "acme/2026-03/lens-2026-03.csv").read_bytes() == GOOD.encode()
    assert not list((workspace.archive / "acme").glob("duplicates/*"))
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM snapshots").fetchall() == [(1,)]


def test_a_crash_between_recording_and_moving_a_quarantined_file_is_finished(tmp_path):
    """The record is committed before the file moves: stopped in between, the file waits in
    .claimed and the next run moves it where the record says, once, with its reason."""
    workspace = make_workspace(tmp_path, [contract("acme")])
    claimed = workspace.inbox / ".claimed" / "acme"
    claimed.mkdir(parents=True)
    (claimed / "notes-2026-03.csv").write_bytes(b"date,note\n2026-03-01,hello\n")
    assert cli(workspace, "ingest") == 0
    kept = workspace.quarantine / "acme" / "notes-2026-03.csv"
    assert kept.exists()
    kept.rename(claimed / "notes-2026-03.csv")  # as if the run stopped before the move
    kept.with_name(kept.name + ".reason.txt").unlink()
    assert cli(workspace, "ingest") == 0
    assert kept.read_bytes() == b"date,note\n2026-03-01,hello\n"
    assert "no model column" in kept.with_name(kept.name + ".reason.txt").read_text()
    assert not list(claimed.iterdir())
    assert sorted(p.name for p in (workspace.quarantine / "acme").iterdir()) == [
        "notes-2026-03.csv", "notes-2026-03.csv.reason.txt"]
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM intake_log").fetchall() == [(1,)]


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(
    st.binary(max_size=2000),
    st.text(alphabet=st.sampled_from('ab,;\t"\r\n \x00é'), max_size=400).map(str.encode),
    st.builds(lambda header, body: (header + body).encode("utf-8", "replace"),
              st.sampled_from(["serial_number,device_model\n", "Serial;Model\n", "id\tname\n"]),
              st.text(max_size=300)),
    st.builds(lambda entries: _zip(entries),
              st.dictionaries(st.text(min_size=1, max_size=12).map(lambda s: s + ".csv"),
                              st.binary(max_size=300), max_size=3)),
    st.builds(lambda blob, cut: blob[:cut], st.just(_zip({"d.csv": GOOD.encode()})),
              st.integers(0, 300)),
), suffix=st.sampled_from([".csv", ".zip", ".txt"]))
@example(data=b"PK\x01\x02" + b"\x00" * 42 + b"PK\x05\x06" + b"\x00" * 8 + b"." + b"\x00" * 9,
         suffix=".csv")  # an entry without a name once broke zipfile with an IndexError
def test_the_reader_raises_only_its_own_clear_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"upload{suffix}"
    path.write_bytes(data)
    for reader in (read_inventory_export, read_rma_log):
        try:
            reader(path)
            continue  # read: fine
        except UnreadableExport as error:
            message = str(error)
        assert message
        assert "Traceback" not in message
