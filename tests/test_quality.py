"""The GX suites' findings, stored per snapshot and named in the report, and the
month-over-month guard in `status`."""
import re

import duckdb
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


def _findings(workspace, source_name):
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    try:
        return {name: (passed, checked, failing) for name, passed, checked, failing in
                con.execute("SELECT check_name, passed, checked, failing FROM quality_checks "
                            "WHERE source_name = ?", [source_name]).fetchall()}
    finally:
        con.close()


def test_inventory_findings_are_counted_and_stored(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    rows = devices("Poly Studio X30", 8) + devices("Mystery Box", 2, prefix="MB") + [
        {"serial_number": "SN000001", "device_model": "Poly Studio X30"},        # listed twice
        {"serial_number": "sn000002 ", "device_model": "Poly Studio X30"},       # listed twice
        {"serial_number": "X!", "device_model": "Poly Studio X30"},              # odd serial
        {"mac_address": "00:04:F2:ZZ:00:01", "device_model": "Poly Studio X30"},  # bad MAC
        {"serial_number": "NM1", "device_model": ""}]                            # no model
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "ingest") == 0
    found = _findings(workspace, "lens-2026-03.csv")
    assert found["identity"] == (False, 15, 1)
    assert found["model"] == (False, 15, 1)
    assert found["duplicates"] == (False, 15, 2)
    assert found["serial_format"][2] == 2  # "X!" and "NM1"
    assert found["mac_format"] == (False, 15, 1)
    assert found["unclassified_share"] == (False, 15, 2)  # 2 of the 14 with a model: over 10 %
    assert "month_over_month" not in found  # no previous month


def test_a_mac_is_twelve_hex_digits_whatever_separates_them(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    macs = ["00:04:F2:00:00:01", "00-04-f2-00-00-02", "0004.F200.0003", " 0004f2000004 ",
            ":00:04:F2:00:00:05:",                                            # all look right
            "00:04:F2:00:00", "00:04:F2:00:00:00:07", "00:04:G2:00:00:08",    # odd
            "::", ""]                                                         # no MAC at all
    rows = [{"serial_number": f"SN{i:06d}", "mac_address": mac, "device_model": "Poly Trio"}
            for i, mac in enumerate(macs)]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "ingest") == 0
    assert _findings(workspace, "lens-2026-03.csv")["mac_format"] == (False, 10, 3)


def test_a_partial_export_is_suspect_but_counts(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 100)))
    drop(workspace, "acme", "lens-2026-04.csv", export_text(devices("Poly Studio X30", 49)))
    drop(workspace, "acme", "lens-2026-05.csv", export_text(devices("Poly Studio X30", 25)))
    assert cli(workspace, "run", "--month", "2026-04") == 0
    assert _findings(workspace, "lens-2026-04.csv")["month_over_month"] == (False, 1, 1)
    assert "month_over_month" not in _findings(workspace, "lens-2026-05.csv")  # April < 50
    row = row_for(reconciliation(workspace, "2026-04"), "acme", "video")
    assert row["devices_counted"] == "49"
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    out = capsys.readouterr().out
    assert "Suspect snapshots (1):" in out
    assert "2026-04 acme lens-2026-04.csv: 49 devices against 100 the month before" in out
    # A complete re-export replaces the suspect one, and the flag goes with it.
    drop(workspace, "acme", "lens-2026-04-complete.csv", export_text(devices("Studio X30", 98)))
    assert cli(workspace, "ingest") == 0
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    assert "Suspect snapshots" not in capsys.readouterr().out


def test_half_exactly_is_not_suspect(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 100)))
    drop(workspace, "acme", "lens-2026-04.csv", export_text(devices("Poly Studio X30", 50)))
    assert cli(workspace, "ingest") == 0
    assert _findings(workspace, "lens-2026-04.csv")["month_over_month"] == (True, 1, 0)


def test_a_placeholder_serial_is_no_bad_serial(tmp_path):
    # Lens writes "Not Set" (or "N/A") where it has no serial: read as none, not as an odd one.
    workspace = make_workspace(tmp_path, [contract("acme")])
    rows = devices("Poly Studio X30", 4) + [
        {"serial_number": "Not Set", "mac_address": "00:04:F2:00:00:01",
         "device_model": "Poly Trio"},
        {"serial_number": "N/A", "mac_address": "00:04:F2:00:00:02", "device_model": "Poly Trio"}]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "ingest") == 0
    assert _findings(workspace, "lens-2026-03.csv")["serial_format"][2] == 0


def _finding_cells(workspace, month: str) -> list[str]:
    """The text of each "Finding" cell of the report's data-quality table."""
    html = (workspace.home / "reports" / month / "acme.html").read_text(encoding="utf-8")
    table = html.split("Data quality</h2>")[1].split("</table>")[0]
    return [" ".join(cell.split()) for cell in re.findall(r"<td>([^<]*)</td></tr>", table)]


def test_a_finding_names_its_devices_the_first_ten_then_a_count(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    odd = [{"serial_number": f"X!{i}", "device_model": "Poly Studio X30"} for i in range(12)]
    rows = devices("Poly Studio X30", 8) + odd + [  # rows 2-9, then odd serials in rows 10-21
        {"mac_address": "00:04:F2:ZZ:00:01", "serial_number": "SN100001",
         "device_model": "Poly Studio X30"},                                     # row 22: bad MAC
        {"serial_number": "SN000001", "device_model": "Poly Studio X30"},        # row 23: as row 3
        {"device_model": "Poly Trio"},                                           # row 24: no id
        {"serial_number": "NM12345", "device_model": ""}]                        # row 25: no model
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    cells = _finding_cells(workspace, "2026-03")
    named = ", ".join(f"X!{i} (row {10 + i})" for i in range(10))
    assert ("12 serial numbers do not look like Poly serials (4-40 letters and digits): "
            f"{named} and 2 more") in cells
    assert ("1 MAC address is not 12 hex digits: it is not used to identify the device: "
            "SN100001 (00:04:F2:ZZ:00:01, row 22)") in cells
    assert ("1 row lists a device already listed in the file: each device counts once: "
            "SN000001 (row 3)") in cells
    assert ("1 of 24 rows has no serial number, MAC address or Lens device id: it is not "
            "counted: Poly Trio (row 24)") in cells
    assert "1 of 24 rows has no model: it is not counted: NM12345 (row 25)" in cells


def test_an_rma_log_finding_names_its_rows(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 4)))
    drop(workspace, "acme", "rma-2026-03.csv", "rma_number,date,serial,model\n"
         "R1,2026-03-02,SN000001,Poly Voyager Focus 2\n"
         ",2026-03-03,SN000002,Poly Voyager Focus 2\n"       # row 3: no RMA number
         "R3,31.02.2026,SN000003,Poly Voyager Focus 2\n")    # row 4: no such day
    assert cli(workspace, "run", "--month", "2026-03") == 0
    cells = _finding_cells(workspace, "2026-03")
    assert "1 of 3 rows has no RMA number: it is not counted: SN000002 (row 3)" in cells
    assert ("1 of 3 rows has no date in the form YYYY-MM-DD or DD.MM.YYYY: it is not counted: "
            "R3 (31.02.2026, row 4)") in cells
