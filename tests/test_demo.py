"""The demo workspace through the real CLI: every status and list appears, and it is repeatable."""
import csv
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo(full_demo, demo_copy):
    """The demo workspace (the session's one, built once by conftest.full_demo: a copy of it)
    and what `demo` printed."""
    return demo_copy, full_demo[1]


def _rows(home: Path, name: str) -> list[dict]:
    rows = []
    for path in sorted((home / "reports").glob(f"*/{name}")):
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def test_demo_prints_where_the_files_are(full_demo):
    home, out = full_demo  # the folder it was given
    assert f"{home}/reports/<YYYY-MM>/reconciliation.csv" in out
    assert f"Renewal proposal: {home}/reports/2026-10/renewal-lakeshore-health.yaml" in out


def test_the_demo_shows_a_held_file_and_an_approval(full_demo):
    home, out = full_demo
    # The slip review exists for: October's export copied under September's name.
    assert ("held inbox/cobalt-ridge-engineering/PolyLens_Devices_2026-09 (2).csv: its devices "
            "were last seen as late as 2026-10-") in out
    first, second = out.split("== review (python -m pipelines review --month 2026-10):")[1:]
    assert "Waiting for approval (" in first
    assert "report: [Nordlicht Kommunikation GmbH]" in first
    assert "== approved (python -m pipelines approve --month 2026-10): " in first
    # After the corrected export: the updated report and the correction waited, then went.
    assert "correction: [Nordlicht Kommunikation GmbH] Korrektur:" in second
    assert "quarantine/cobalt-ridge-engineering/PolyLens_Devices_2026-09 (2).csv: " in second
    # What the two approvals sent is every message to a CSM in the outbox, each once.
    approved = sum(int(part.split("approve --month 2026-10): ")[1].split()[0])
                   for part in (first, second))
    to_csms = [p for p in (home / "outbox" / "2026-10").glob("*.eml")
               if p.name.split("-")[0] in ("report", "true_up", "rma", "correction")]
    assert approved == len(to_csms)


def test_the_demo_has_a_renewed_contract_and_a_correction(demo):
    import yaml

    home, _ = demo
    contracts = yaml.safe_load((home / "config" / "contracts.yaml").read_text())
    renewed = [c["id"] for c in contracts["customers"] if len(c.get("terms", [])) == 2]
    assert renewed == ["nordwind-energie"]
    nordwind = {row["month"]: row for row in _rows(home, "reconciliation.csv")
                if row["customer_id"] == "nordwind-energie" and row["category"] == "headset"}
    assert (nordwind["2026-04"]["ordered_devices"], nordwind["2026-05"]["ordered_devices"]) \
        == ("130", "140")  # each month against its own term
    [correction] = (home / "outbox" / "2026-10").glob("correction-rheintal-praezision-*.eml")
    text = message_from_bytes(correction.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    # German: what was sent, what holds
    assert "+6 Geräte" in text
    assert "+7 Geräte" in text


def test_every_status_appears_over_the_demo_year(demo):
    home, _ = demo
    statuses = {row["status"] for row in _rows(home, "reconciliation.csv")}
    assert statuses == {"OK", "WATCH", "TRUE_UP", "NO_DATA", "NOT_COVERED", "QUOTE_REQUIRED",
                        "UNCLASSIFIED"}
    assert {row["status"] for row in _rows(home, "rma.csv")} >= {"OK", "WATCH", "BREACH"}
    months = sorted(p.name for p in (home / "reports").iterdir())
    assert len(months) == 12
    assert months[-1] == "2026-10"


def test_every_list_has_members(demo):
    import duckdb

    home, _ = demo
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM snapshot_devices WHERE times_listed > 1"
                       ).fetchone()[0] > 0
    reasons = {r for (r,) in con.execute("SELECT DISTINCT reject_reason FROM inventory_rows "
                                         "WHERE reject_reason IS NOT NULL").fetchall()}
    assert reasons == {"no model", "no serial number, MAC address or Lens device id"}
    eol = [row for row in _rows(home, "reconciliation.csv") if row["eol_excluded"] not in ("", "0")]
    assert eol
    assert list((home / "quarantine").rglob("*.reason.txt"))
    # Several export styles and separators were taken in.
    names = {p.name for p in (home / "archive").rglob("*") if p.is_file()}
    assert any(n.endswith(".txt") for n in names)
    assert any(" " in n for n in names)


def test_lens_vocabulary_is_taken_in_and_accessories_are_listed_not_counted(demo):
    home, _ = demo
    # Exports headed "Device Type" and a partner's German list were loaded; only the notes
    # file (no model column) was refused, and the export copied under the month before's name
    # held.
    assert sorted(p.name for p in (home / "quarantine").rglob("*.reason.txt")) == [
        "PolyLens_Devices_2026-09 (2).csv.reason.txt", "notes-2026-04.csv.reason.txt"]
    rows = _rows(home, "reconciliation.csv")
    assert not any(row["category"] == "not_counted" for row in rows)
    report = (home / "reports" / "2026-10" / "hanseatische-logistik.html").read_text("utf-8")
    assert "Nicht gezählt: Zubehör, Software und Produkte anderer Hersteller" in report
    assert "<td>Voyager 5200 Charge Case</td>" in report
    assert "<td>Lens Desktop Windows</td>" \
        in report
    headset = next(r for r in rows if r["month"] == "2026-10"
                   and r["customer_id"] == "hanseatische-logistik" and r["category"] == "headset")
    assert headset["status"] != "TRUE_UP"  # 214 headsets; with the charge cases it would be


def test_demo_is_repeatable(demo, tmp_path):
    home, _ = demo
    again = tmp_path / "again"
    assert subprocess.run([sys.executable, "-m", "pipelines", "demo", "--home", str(again),
                           "--month", "2026-10"], cwd=ROOT, capture_output=True,
                          check=False).returncode == 0
    for path in sorted((home / "reports").rglob("*")):
        if path.suffix in (".csv", ".yaml"):  # HTML and PDF reports carry their render time
            assert (again / path.relative_to(home)).read_bytes() == path.read_bytes(), path


def test_demo_refuses_an_existing_workspace(demo):
    home, _ = demo
    done = subprocess.run([sys.executable, "-m", "pipelines", "demo", "--home", str(home)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "already has a contracts.yaml" in done.stderr
