"""Inbox intake: the shapes of Lens exports, months, receipt order, archive and quarantine."""
import codecs
import os
from datetime import UTC, datetime

import duckdb
import pytest
from builders import (
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    reconciliation,
    row_for,
)

VIDEO = {"video": {"ordered_devices": 100, "unit_price_per_year": 180.0}}


@pytest.fixture
def workspace(tmp_path):
    return make_workspace(tmp_path, [contract("acme", categories={
        "video": {"ordered_devices": 100, "unit_price_per_year": 180.0},
        "voice": {"ordered_devices": 10, "unit_price_per_year": 24.0}})])


def _counted(workspace, month, category="video"):
    assert cli(workspace, "run", "--month", month) == 0
    return row_for(reconciliation(workspace, month), "acme", category)["devices_counted"]


def _all_files(workspace):
    return sorted(p.relative_to(workspace.home).as_posix() for p in workspace.home.rglob("*")
                  if p.is_file() and p.suffix not in (".duckdb", ".html", ".pdf", ".eml")
                  and p.name != ".polyrecon.lock")


LENS_UI = ("Device Name", "Serial Number", "MAC Address", "Hardware Model", "Site", "Room",
           "Device ID", "Last Detected")
CAMEL = ("id", "name", "serialNumber", "macAddress", "hardwareModel", "site", "room",
         "connected")
SHORT = ("Serial", "MAC Address", "Model", "Site", "Room")


@pytest.mark.parametrize(("columns", "separator", "encoding"), [
    (LENS_UI, ";", "utf-8-sig"),
    (CAMEL, "\t", "utf-8"),
    (SHORT, ",", "cp1252"),
    (LENS_UI, ",", "utf-16"),
])
def test_export_shapes(workspace, columns, separator, encoding):
    serial = next(c for c in columns if c.lower().startswith("serial"))
    model = next(c for c in columns if c.lower().endswith("model"))
    site = next(c for c in columns if c.lower() == "site")
    rows = [{serial: f"SN{i:05d}", model: "Poly Studio X50", site: "München; Süd"}
            for i in range(7)]
    text = export_text(rows, columns=columns, separator=separator)
    drop(workspace, "acme", "Device Inventory 2026-03.csv", text, encoding=encoding)
    assert _counted(workspace, "2026-03") == "7"


def test_quoted_fields_blank_lines_and_trailing_separators(workspace):
    text = ('serial_number,device_model,site_name,\r\n'
            'A1,Poly Studio X30,"Berlin, Haus 2",\r\n'
            '\r\n'
            'A2,Poly Studio X30,"Line\nbreak",\r\n')
    drop(workspace, "acme", "lens-2026-03.csv", text)
    assert _counted(workspace, "2026-03") == "2"
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT row_number, site FROM raw_inventory ORDER BY 1").fetchall() == [
        (2, "Berlin, Haus 2"), (4, "Line\nbreak")]


def test_identity_serial_then_mac_then_lens_id_and_duplicates_count_once(workspace):
    rows = [
        {"serial_number": "abc123", "device_model": "Poly Studio X30"},
        {"serial_number": " ABC123 ", "device_model": "Poly Studio X30"},   # same device
        {"mac_address": "00:04:f2:aa:bb:cc", "device_model": "Poly Studio X30"},
        {"mac_address": "0004F2-AABBCC", "device_model": "Poly Studio X30"},  # same MAC
        {"lens_device_id": "9b2c-1", "device_model": "Poly Studio X30"},
        {"mac_address": "not-a-mac", "device_model": "Poly Studio X30"},     # no identity
        {"serial_number": "N/A", "lens_device_id": "9b2c-2",
         "device_model": "Poly Studio X30"},                                  # placeholder
        {"serial_number": "ZZ1", "device_model": "  "},                       # no model
    ]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert _counted(workspace, "2026-03") == "4"
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    rejected = con.execute("SELECT row_number, reject_reason FROM inventory_rows "
                           "WHERE reject_reason IS NOT NULL ORDER BY 1").fetchall()
    assert rejected == [(7, "no serial number, MAC address or Lens device id"), (9, "no model")]
    assert con.execute("SELECT identity FROM inventory_rows WHERE row_number = 8").fetchall() \
        == [("ID:9b2c-2",)]
    listed = con.execute("SELECT identity, times_listed FROM snapshot_devices "
                         "WHERE times_listed > 1 ORDER BY 1").fetchall()
    assert listed == [("MAC:0004F2AABBCC", 2), ("SN:ABC123", 2)]


def test_month_from_modification_time_when_the_name_has_none(workspace):
    may = datetime(2026, 5, 20, 12, tzinfo=UTC).timestamp()
    drop(workspace, "acme", "export.csv", export_text(devices("Poly Studio X30", 4)), mtime=may)
    assert _counted(workspace, "2026-05") == "4"


def test_later_file_for_a_month_replaces_the_earlier_one(workspace):
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 90)),
         mtime=1_770_000_000)
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 96)), mtime=1_770_600_000)
    assert _counted(workspace, "2026-03") == "96"
    # A third upload, received later still, replaces it again; all three stay stored.
    drop(workspace, "acme", "lens-2026-03-final.csv", export_text(devices("Poly Studio X30", 80)))
    assert _counted(workspace, "2026-03") == "80"
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM snapshots WHERE month = '2026-03'").fetchone()[0] == 3


def test_same_content_again_is_archived_as_duplicate_and_changes_nothing(workspace, capsys):
    text = export_text(devices("Poly Studio X30", 5))
    drop(workspace, "acme", "lens-2026-03.csv", text)
    assert _counted(workspace, "2026-03") == "5"
    drop(workspace, "acme", "lens-2026-03.csv", text)
    first = (workspace.home / "reports/2026-03/reconciliation.csv").read_bytes()
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert "1 duplicate" in capsys.readouterr().out
    assert (workspace.home / "reports/2026-03/reconciliation.csv").read_bytes() == first
    assert _all_files(workspace) == [
        "archive/acme/2026-03/lens-2026-03.csv", "archive/acme/duplicates/lens-2026-03.csv",
        "config/contracts.yaml", "config/partner.yaml",
        "reports/2026-03/acme-devices.csv", "reports/2026-03/acme-devices.xlsx",
        "reports/2026-03/reconciliation.csv", "reports/2026-03/rma.csv"]


def test_identical_export_for_the_next_month_is_that_months_snapshot(workspace):
    text = export_text(devices("Poly Studio X30", 5))
    drop(workspace, "acme", "lens-2026-03.csv", text)
    drop(workspace, "acme", "lens-2026-04.csv", text)
    assert _counted(workspace, "2026-04") == "5"


def test_unreadable_files_are_quarantined_with_a_reason_and_the_run_goes_on(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO),
                                          contract("bolt", categories=VIDEO)])
    drop(workspace, "acme", "notes-2026-03.csv", "Comment,Owner\nhello,me\n")
    drop(workspace, "acme", "photo-2026-03.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    drop(workspace, "ghost", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 1)))
    (workspace.inbox / "stray-2026-03.csv").write_text("serial_number,device_model\nA,B\n")
    drop(workspace, "bolt", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 3)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert row_for(reconciliation(workspace, "2026-03"), "bolt", "video")["devices_counted"] == "3"
    reasons = {p.relative_to(workspace.quarantine).as_posix(): p.read_text()
               for p in workspace.quarantine.rglob("*.reason.txt")}
    assert "no model column" in reasons["acme/notes-2026-03.csv.reason.txt"]
    assert "row 1" in reasons["acme/notes-2026-03.csv.reason.txt"]
    assert "binary data" in reasons["acme/photo-2026-03.csv.reason.txt"]
    assert "no customer 'ghost' in contracts.yaml" in reasons["ghost/lens-2026-03.csv.reason.txt"]
    assert "customer's folder" in reasons["_no-customer/stray-2026-03.csv.reason.txt"]
    for name in reasons:
        assert (workspace.quarantine / name.removesuffix(".reason.txt")).exists()
    assert not [p for p in workspace.inbox.rglob("*") if p.is_file()]


def test_hidden_files_stay_and_links_are_quarantined_without_touching_the_target(workspace,
                                                                                 tmp_path):
    drop(workspace, "acme", ".DS_Store", b"\x00\x01")
    target = tmp_path / "elsewhere.csv"
    target.write_text("secret,data\n")
    os.symlink(target, workspace.inbox / "acme" / "link-2026-03.csv")
    assert cli(workspace, "ingest") == 0
    assert (workspace.inbox / "acme" / ".DS_Store").exists()
    assert (workspace.quarantine / "acme" / "link-2026-03.csv").is_symlink()
    assert target.read_text() == "secret,data\n"


def test_rma_log_is_taken_in_and_each_rma_number_counts_once(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "headset": {"ordered_devices": 40, "unit_price_per_year": 12.0}})])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Voyager Focus 2", 40)))
    drop(workspace, "acme", "RMA-log-2026-03.csv",
         "RMA Number;Date;Serial;Model\n"
         "R-1;2026-01-10;SN000001;Poly Voyager Focus 2 Series\n"
         "R-1;2026-01-11;SN000001;Poly Voyager Focus 2 Series\n"   # same RMA number
         "R-2;2026-02-10;SN000002;Poly Savi 8220 Office\n"
         "R-3;2026-03-31;SN000003;Poly Voyager Focus UC\n"
         "R-4;2026-04-01;SN000004;Poly Voyager Focus UC\n"         # after March
         "R-5;2025-12-31;SN000005;Poly Voyager Focus UC\n"         # last year
         "R-6;2026-02-01;PH1;Polycom VVX 450\n"                    # not a headset
         "R-7;someday;SN000007;Poly Voyager Focus UC\n")           # no valid date
    assert cli(workspace, "run", "--month", "2026-03") == 0
    rma = (workspace.home / "reports/2026-03/rma.csv").read_text().splitlines()
    assert rma == ["customer_id,year,headset_rmas,headset_base,rma_rate_pct,status",
                   "acme,2026,3,40,7.50,BREACH"]


@pytest.mark.parametrize(("rmas", "status"), [(1, "OK"), (3, "OK"), (4, "WATCH"), (5, "WATCH"),
                                           (6, "BREACH")])
def test_rma_threshold(tmp_path, rmas, status):
    """100 headsets: 5 RMAs = 5 % does not exceed the threshold; 4 % is WATCH."""
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}})])
    drop(workspace, "acme", "rma-2026-06.csv", "rma_number,date,serial,model\n" + "".join(
        f"R{i},2026-06-0{1 + i % 5},S{i},Poly Voyager Focus 2\n" for i in range(rmas)))
    assert cli(workspace, "run", "--month", "2026-06") == 0
    line = (workspace.home / "reports/2026-06/rma.csv").read_text().splitlines()[1]
    assert line == f"acme,2026,{rmas},100,{rmas}.00,{status}"


def test_utf16_bom_and_cp1252_keep_umlauts(workspace):
    text = export_text([{"serial_number": "A1", "device_model": "Poly Studio X30",
                         "site_name": "Zürich"}])
    drop(workspace, "acme", "a-2026-03.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    drop(workspace, "acme", "b-2026-04.csv", text.encode("cp1252"))
    assert cli(workspace, "ingest") == 0
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT DISTINCT site FROM raw_inventory").fetchall() == [("Zürich",)]


def test_a_drop_folder_name_given_back_is_that_customers_file_only(tmp_path):
    """A file of the S3 drop folder taken in under a local name of its own keeps the upload's
    name in the ledger (object_inbox.taken_names); another customer's file that happens to
    bear the same local name keeps its own."""
    from builders import warehouse_rows

    from pipelines.core.config import load_config
    from pipelines.intake.take import take_inbox

    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO),
                                          contract("bravo", categories=VIDEO)])
    text = export_text(devices("Poly Studio X30", 3))
    drop(workspace, "acme", "lens-2026-03 (2).csv", text)
    drop(workspace, "bravo", "lens-2026-03 (2).csv", text)
    config = load_config(workspace)
    take_inbox(workspace, config.contracts, config.catalog, "en", window_days=10,
               names={("acme", "lens-2026-03 (2).csv"): "lens-2026-03.csv"})
    assert sorted(warehouse_rows(workspace, "SELECT customer_id, file_name FROM intake_log",
                                 [])) == [("acme", "lens-2026-03.csv"),
                                          ("bravo", "lens-2026-03 (2).csv")]
