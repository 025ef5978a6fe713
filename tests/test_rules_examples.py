"""Every worked example of rules.md, end to end: Lens exports in the inbox → reconciliation.csv."""
import csv
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from builders import (
    SNAKE,
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    reconciliation,
    row_for,
    write_yaml,
)
from fake_lens import FakeLens

from pipelines.core.config import Policy, load_config
from pipelines.core.months import Month
from pipelines.lens_api.client import LensCredentials
from pipelines.lens_api.pull import pull_lens
from pipelines.reconcile import (
    baseline,
    decide_status,
    next_term,
    prorated_amount,
    remaining_months,
    to_cents,
)


def _one_month(tmp_path, ordered, counted, category="video", **policy):
    workspace = make_workspace(tmp_path, [contract(categories={
        category: {"ordered_devices": ordered, "unit_price_per_year": 180.0}})], policy or None)
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", counted)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    return row_for(reconciliation(workspace, "2026-03"), "acme", category)


@pytest.mark.parametrize(("ordered", "counted", "growth", "status", "true_up", "baseline_shown"), [
    (100, 100, "0.00", "OK", "", "105.00"),
    (100, 103, "3.00", "OK", "", "105.00"),
    (100, 104, "4.00", "WATCH", "", "105.00"),        # 80 % of the 5 % trigger used
    (100, 105, "5.00", "TRUE_UP", "5", "105.00"),     # count reached baseline 105.00
    (10, 10, "0.00", "OK", "", "10.50"),
    (10, 11, "10.00", "TRUE_UP", "1", "10.50"),
    (120, 95, "-20.83", "OK", "", "126.00"),          # shrinking never lowers ordered mid-term
])
def test_worked_example_table(tmp_path, ordered, counted, growth, status, true_up,
                              baseline_shown):
    row = _one_month(tmp_path, ordered, counted)
    assert (row["ordered_devices"], row["devices_counted"]) == (str(ordered), str(counted))
    assert row["growth_pct"] == growth
    assert row["status"] == status
    assert row["true_up_devices"] == true_up
    assert row["baseline"] == baseline_shown


def test_true_up_resets_the_baseline_in_the_row(tmp_path):
    row = _one_month(tmp_path, 100, 105)
    assert row["new_ordered_devices"] == "105"
    assert row["new_baseline"] == "110.25"


@pytest.mark.parametrize(("proration_start", "months", "amount", "first_billed"), [
    ("report_month", 3, "225.00", "October 1, 2026"),  # Oct, Nov, Dec: 5 × 180 × 3/12
    ("next_month", 2, "150.00", "November 1, 2026"),
])
def test_proration_example(tmp_path, proration_start, months, amount, first_billed):
    workspace = make_workspace(tmp_path, [contract(categories={
        "video": {"ordered_devices": 100, "unit_price_per_year": 180.0}})],
        {"proration_start": proration_start})
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 105)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    row = row_for(reconciliation(workspace, "2026-10"), "acme", "video")
    assert (row["status"], row["true_up_devices"]) == ("TRUE_UP", "5")
    assert row["prorated_amount"] == amount
    start = Month(2026, 10) if proration_start == "report_month" else Month(2026, 11)
    assert remaining_months(start, Month(2026, 12).last_day) == months
    # The report states the start the amount was computed from.
    assert f"{months} of 12 months (from {first_billed} to the term" in \
        (workspace.home / "reports/2026-10/acme.html").read_text()


def test_replay_example(tmp_path):
    """Jan 101 OK; Feb 106 TRUE_UP +6 → 106 / 111.30; Mar 110 OK (3.77 %); Apr 112 TRUE_UP +6;
    May no snapshot → NO_DATA with ordered 112."""
    workspace = make_workspace(tmp_path, [contract(categories={
        "video": {"ordered_devices": 100, "unit_price_per_year": 180.0}})])
    for month, count in (("01", 101), ("02", 106), ("03", 110), ("04", 112)):
        drop(workspace, "acme", f"lens-2026-{month}.csv",
             export_text(devices("Poly Studio X30", count)))
    expected = {
        "2026-01": {"status": "OK", "devices_counted": "101", "ordered_devices": "100",
                        "baseline": "105.00", "growth_pct": "1.00"},
        "2026-02": {"status": "TRUE_UP", "devices_counted": "106", "ordered_devices": "100",
                        "true_up_devices": "6", "new_ordered_devices": "106",
                        "new_baseline": "111.30"},
        "2026-03": {"status": "OK", "devices_counted": "110", "ordered_devices": "106",
                        "baseline": "111.30", "growth_pct": "3.77"},
        "2026-04": {"status": "TRUE_UP", "devices_counted": "112", "ordered_devices": "106",
                        "true_up_devices": "6", "new_ordered_devices": "112",
                        "new_baseline": "117.60"},
        "2026-05": {"status": "NO_DATA", "devices_counted": "", "eol_excluded": "",
                        "growth_pct": "", "ordered_devices": "112", "baseline": "117.60"},
    }
    for month, values in expected.items():
        assert cli(workspace, "run", "--month", month) == 0
        row = row_for(reconciliation(workspace, month), "acme", "video")
        assert {key: row[key] for key in values} == values, month
    # April's true-up is decided exactly: 112 × 100 = 11200 ≥ 106 × 105 = 11130.
    assert decide_status(112, 106, Policy()) == "TRUE_UP"
    assert decide_status(111, 106, Policy()) == "WATCH"


def test_ordered_from_installed_and_growth(tmp_path):
    """Footnote 6: ordered = ceil(installed × (1 + growth/100)) = ceil(760 × 1.05) = 798."""
    workspace = make_workspace(tmp_path, [contract(categories={
        "voice": {"installed_devices": 760, "growth_rate_pct": 5,
                  "unit_price_per_year": 24.0}})])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Polycom VVX 450", 798)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    row = row_for(reconciliation(workspace, "2026-03"), "acme", "voice")
    assert (row["ordered_devices"], row["baseline"], row["status"]) == ("798", "837.90", "OK")


def test_exact_arithmetic_helpers():
    assert to_cents(Decimal("-20.8333")) == Decimal("-20.83")
    assert str(to_cents(Decimal("0.125"))) == "0.13"  # half-up, not banker's rounding
    assert str(to_cents(baseline(120, Policy()))) == "126.00"
    assert prorated_amount(5, Decimal("180.00"), 3) == Decimal("225.00")
    assert prorated_amount(1, Decimal("10.00"), 1) == Decimal("0.83")
    assert remaining_months(Month(2027, 1), Month(2026, 12).last_day) == 0


@pytest.mark.parametrize(("term", "renewed"), [
    (("2024-03-01", "2025-02-28"), ("2025-03-01", "2026-02-28")),  # rules.md's example
    (("2024-02-29", "2025-02-28"), ("2025-03-01", "2026-02-28")),  # from a leap day: 12 months
    (("2025-06-15", "2026-06-14"), ("2026-07-01", "2027-06-30")),  # mid-month: the 1st after
    (("2025-06-15", "2026-06-30"), ("2026-07-01", "2027-06-30")),
    (("2026-01-01", "2026-06-30"), ("2026-07-01", "2026-12-31")),  # six months stay six
])
def test_renewal_by_whole_months(term, renewed, reliability):
    """rules.md "Renewal": the same number of whole months, to the day before the anniversary;
    no month in two terms (issue 29: a leap-day term renewed to 13 months, a mid-month one
    into the month the old term ended)."""
    assert next_term(*map(date.fromisoformat, term)) == tuple(map(date.fromisoformat, renewed))
    if term[0].endswith("-02-29"):
        reliability(f"a term from a leap day ({term[0]}..{term[1]}) renewed", "renewal",
                    f"{renewed[0]}..{renewed[1]}: twelve whole months, true-ups billed 12/12 "
                    f"(the finding: 13 months)")


def test_a_mid_month_terms_proposal_is_one_renew_accepts(tmp_path, capsys, reliability):
    workspace = make_workspace(tmp_path, [contract(
        categories={"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}},
        term=("2025-06-15", "2026-06-14"))])
    drop(workspace, "acme", "lens-2026-06.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-06") == 0
    capsys.readouterr()
    assert cli(workspace, "renew", "--customer", "acme") == 0
    assert "term 2026-07-01..2027-06-30 added" in capsys.readouterr().out
    drop(workspace, "acme", "lens-2026-07.csv", export_text(devices("Poly Studio X30", 13)))
    assert cli(workspace, "run", "--month", "2026-07") == 0
    row = row_for(reconciliation(workspace, "2026-07"), "acme", "video")
    # 12 ordered from the proposal; a true-up of 1 device billed for the whole new term's
    # twelve months (180.00), not thirteen.
    assert (row["ordered_devices"], row["status"], row["prorated_amount"]) == \
        ("12", "TRUE_UP", "180.00")
    reliability("`renew` of a term from the 15th (2025-06-15..2026-06-14)", "renewal",
                "the proposal 2026-07-01..2027-06-30 accepted by `renew` (the finding: refused "
                "as sharing 2026-06); the next month billed 12/12")


# rules.md "Devices not seen": a Lens UI export's "Last Detected" column ("the last date that
# Poly Lens connected with the Device", info.lens.poly.com/docs/deviceusers/
# device-users-overview), dated as pipelines/demo/exports.py writes it.
LAST_SEEN = (*SNAKE, "Last Detected")
HEADSETS = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}}


def _seen(rows: list[dict], day: str) -> list[dict]:
    return [{**row, "Last Detected": f"{day} 08:15"} for row in rows]


def _headsets_not_seen(workspace, month="2026-03", stale="2025-12-30"):
    """The example's snapshot: 106 headsets, 8 of them last seen more than 90 days before the
    month's end (2025-12-30 is 91 days before 2026-03-31); one seen exactly 90 days before
    (2025-12-31), which is not more than 90, and 97 seen in the month."""
    rows = devices("Voyager Focus 2 Series", 106)
    export = (_seen(rows[:8], stale) + _seen(rows[8:9], "2025-12-31")
              + _seen(rows[9:], f"{month}-20"))
    drop(workspace, "acme", f"lens-{month}.csv", export_text(export, LAST_SEEN))


def _not_seen_run(tmp_path, not_seen, language="en"):
    workspace = make_workspace(tmp_path, [contract(categories=HEADSETS, language=language)],
                               {"not_seen": not_seen})
    _headsets_not_seen(workspace)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    report = _text((workspace.home / "reports/2026-03/acme.html").read_text(encoding="utf-8"))
    return workspace, row_for(reconciliation(workspace, "2026-03"), "acme", "headset"), report


def _text(html: str) -> str:
    """A report as its reader sees the words: tags out, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _evidence(workspace, month="2026-03", delimiter=","):
    path = workspace.home / "reports" / month / "acme-devices.csv"
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")),
                               delimiter=delimiter))


def test_not_seen_example_flag(tmp_path):
    """flag → TRUE_UP, 6 devices; the report: "8 counted devices not seen for 90 days; without
    them 98: OK"."""
    workspace, row, report = _not_seen_run(tmp_path, "flag")
    assert (row["devices_counted"], row["status"], row["true_up_devices"]) == \
        ("106", "TRUE_UP", "6")
    assert "8 counted devices not seen for 90 days; without them 98: OK" in report
    # listed in the report with the day Lens last saw each, and in the evidence pack
    assert "Devices not seen for 90 days, counted (8)" in report
    assert report.count("December 30, 2025") == 8
    pack = _evidence(workspace)
    flagged = [r for r in pack if r["Status"] == "Counted, not seen"]
    assert len(flagged) == 8
    assert {r["Last seen"] for r in flagged} == {"2025-12-30"}
    assert sum(r["Status"] == "Counted" for r in pack) == 98
    assert {r["Last seen"] for r in pack if r["Status"] == "Counted"} == \
        {"2025-12-31", "2026-03-20"}
    # and in the partner's portfolio
    portfolio = _text((workspace.home / "reports/2026-03/portfolio.html").read_text())
    assert "Headsets: 8 counted devices not seen for 90 days; without them 98: OK" in portfolio


def test_not_seen_example_flag_in_german(tmp_path):
    workspace, row, report = _not_seen_run(tmp_path, "flag", language="de")
    assert (row["status"], row["true_up_devices"]) == ("TRUE_UP", "6")
    assert "8 gezählte Geräte seit 90 Tagen nicht gesehen; ohne sie 98: OK" in report
    assert "30. Dezember 2025" in report
    pack = _evidence(workspace, delimiter=";")
    assert sum(r["Status"] == "Gezählt, nicht gesehen" for r in pack) == 8
    assert {r["Zuletzt gesehen"] for r in pack if r["Status"] == "Gezählt, nicht gesehen"} == \
        {"2025-12-30"}


def test_not_seen_example_exclude(tmp_path):
    """exclude → 98 counted, OK, 8 listed as not seen (with their last seen date, like
    end-of-life devices)."""
    workspace, row, report = _not_seen_run(tmp_path, "exclude")
    assert (row["devices_counted"], row["status"], row["true_up_devices"]) == ("98", "OK", "")
    assert row["eol_excluded"] == "0"  # not seen is not end of life
    assert "8 devices not seen for 90 days are left out of the count" in report
    assert "Devices not seen for 90 days, not counted (8)" in report
    assert report.count("December 30, 2025") == 8
    pack = _evidence(workspace)
    assert [r["Last seen"] for r in pack if r["Status"] == "Not seen, not counted"] == \
        ["2025-12-30"] * 8
    assert sum(r["Status"] == "Counted" for r in pack) == 98


def test_not_seen_example_count(tmp_path):
    """count → TRUE_UP, 6 devices, nothing more."""
    workspace, row, report = _not_seen_run(tmp_path, "count")
    assert (row["devices_counted"], row["status"], row["true_up_devices"]) == \
        ("106", "TRUE_UP", "6")
    assert "not seen" not in report.lower()
    assert "last seen" not in report.lower()
    assert sum(r["Status"] == "Counted" for r in _evidence(workspace)) == 106


def test_not_seen_per_category(tmp_path):
    """The policy per category: headsets excluded, video flagged by default."""
    workspace = make_workspace(tmp_path, [contract(categories={
        **HEADSETS, "video": {"ordered_devices": 10, "unit_price_per_year": 180.0}})],
        {"not_seen": {"headset": "exclude"}})
    rows = devices("Voyager Focus 2 Series", 106)
    video = devices("Poly Studio X30", 11, prefix="VX")
    export = (_seen(rows[:8], "2025-11-02") + _seen(rows[8:], "2026-03-20")
              + _seen(video[:2], "2025-11-02") + _seen(video[2:], "2026-03-20"))
    drop(workspace, "acme", "lens-2026-03.csv", export_text(export, LAST_SEEN))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    rows = reconciliation(workspace, "2026-03")
    assert (row_for(rows, "acme", "headset")["devices_counted"],
            row_for(rows, "acme", "headset")["status"]) == ("98", "OK")
    assert (row_for(rows, "acme", "video")["devices_counted"],
            row_for(rows, "acme", "video")["status"]) == ("11", "TRUE_UP")
    report = _text((workspace.home / "reports/2026-03/acme.html").read_text())
    assert "2 counted devices not seen for 90 days; without them 9: OK" in report
    assert "8 devices not seen for 90 days are left out of the count" in report


def test_not_seen_without_last_seen_data_is_not_known(tmp_path):
    """A snapshot without last-seen data: "not known" — every device counts, and the report
    says so; never shown as zero."""
    workspace = make_workspace(tmp_path, [contract(categories=HEADSETS)])
    drop(workspace, "acme", "lens-2026-03.csv",
         export_text(devices("Voyager Focus 2 Series", 106)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    row = row_for(reconciliation(workspace, "2026-03"), "acme", "headset")
    assert (row["devices_counted"], row["status"], row["true_up_devices"]) == \
        ("106", "TRUE_UP", "6")
    report = _text((workspace.home / "reports/2026-03/acme.html").read_text())
    assert "Last seen not known: the inventory has no last-seen dates, so every device " \
        "counts." in report
    assert "0 counted devices" not in report
    assert "not seen for 90 days" not in report
    assert {r["Last seen"] for r in _evidence(workspace)} == {""}


def test_not_seen_a_device_without_a_date_counts_and_is_said(tmp_path):
    """Where some rows have no last-seen date (an empty cell, a date read either way round),
    those devices count, and the report says how many; the others' last seen is known."""
    workspace = make_workspace(tmp_path, [contract(categories=HEADSETS)],
                               {"not_seen": "exclude"})
    rows = devices("Voyager Focus 2 Series", 106)
    export = (_seen(rows[:8], "2025-11-02")
              + [{**row, "Last Detected": ""} for row in rows[8:12]]
              + [{**row, "Last Detected": "11/02/2025"} for row in rows[12:13]]
              + _seen(rows[13:], "2026-03-20"))
    drop(workspace, "acme", "lens-2026-03.csv", export_text(export, LAST_SEEN))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    row = row_for(reconciliation(workspace, "2026-03"), "acme", "headset")
    assert (row["devices_counted"], row["status"]) == ("98", "OK")
    report = _text((workspace.home / "reports/2026-03/acme.html").read_text())
    assert "8 devices not seen for 90 days are left out of the count" in report
    assert "5 counted devices have no last-seen date and count." in report
    assert "not known" not in report
    # the evidence pack shows the cell it could not read as it stands
    assert {r["Last seen"] for r in _evidence(workspace)} == \
        {"2025-11-02", "", "11/02/2025", "2026-03-20"}


def test_not_seen_is_decided_month_by_month_in_the_replay(tmp_path):
    """A device excluded in M counts again in a later month in which it was seen: January
    leaves 8 headsets out (98, OK); in February all 106 were seen: TRUE_UP, 6 devices, and
    January, replayed under February, stays as it was."""
    workspace = make_workspace(tmp_path, [contract(categories=HEADSETS)],
                               {"not_seen": "exclude"})
    rows = devices("Voyager Focus 2 Series", 106)
    drop(workspace, "acme", "lens-2026-01.csv", export_text(
        _seen(rows[:8], "2025-09-15") + _seen(rows[8:], "2026-01-20"), LAST_SEEN))
    drop(workspace, "acme", "lens-2026-02.csv", export_text(_seen(rows, "2026-02-18"), LAST_SEEN))
    assert cli(workspace, "run", "--month", "2026-01") == 0
    january = row_for(reconciliation(workspace, "2026-01"), "acme", "headset")
    assert (january["devices_counted"], january["status"]) == ("98", "OK")
    assert cli(workspace, "run", "--month", "2026-02") == 0
    february = row_for(reconciliation(workspace, "2026-02"), "acme", "headset")
    assert (february["devices_counted"], february["ordered_devices"], february["status"],
            february["true_up_devices"]) == ("106", "100", "TRUE_UP", "6")
    assert cli(workspace, "reconcile", "--month", "2026-01") == 0
    assert row_for(reconciliation(workspace, "2026-01"), "acme", "headset") == january


def test_not_seen_counts_the_days_to_the_months_last_day(tmp_path):
    """The same export reconciled for a later month: its days lie further back."""
    workspace = make_workspace(tmp_path, [contract(categories=HEADSETS)],
                               {"not_seen": "exclude", "not_seen_days": 30})
    rows = devices("Voyager Focus 2 Series", 106)
    # 2026-04-30 minus 30 days is 2026-03-31: the day before that is more than 30 days back.
    drop(workspace, "acme", "lens-2026-04.csv", export_text(
        _seen(rows[:3], "2026-03-30") + _seen(rows[3:5], "2026-03-31")
        + _seen(rows[5:], "2026-04-28"), LAST_SEEN))
    assert cli(workspace, "run", "--month", "2026-04") == 0
    row = row_for(reconciliation(workspace, "2026-04"), "acme", "headset")
    assert (row["devices_counted"], row["status"]) == ("103", "OK")


def test_not_seen_from_a_lens_pull_reads_last_detected(tmp_path):
    """Lens's `lastDetected` of an API pull is the last seen: the recorded public page
    (tests/fixtures/lens/README.md) has two Edge E350 phones last detected 2026-08-12, 110 days
    before the end of November."""
    recorded = (Path(__file__).parent / "fixtures/lens/polylens2otel-devicesearch.json"
                ).read_bytes()
    with FakeLens({}, recorded={"t-recorded": recorded}) as fake:
        workspace = make_workspace(tmp_path, [contract(categories={
            "voice": {"ordered_devices": 1, "unit_price_per_year": 24.0}},
            lens_tenant_id="t-recorded")])
        write_yaml(workspace.partner_file, {"lens": {"token_url": fake.token_url,
                                                     "graphql_url": fake.graphql_url}})
        [pulled] = pull_lens(load_config(workspace), Month(2026, 11), today=date(2026, 11, 24),
                             credentials=LensCredentials(fake.client_id, fake.client_secret))
    assert pulled.outcome == "loaded", pulled.detail
    assert cli(workspace, "reconcile", "--month", "2026-11") == 0
    assert cli(workspace, "report", "--month", "2026-11") == 0
    row = row_for(reconciliation(workspace, "2026-11"), "acme", "voice")
    assert (row["devices_counted"], row["status"], row["true_up_devices"]) == \
        ("2", "TRUE_UP", "1")
    report = _text((workspace.home / "reports/2026-11/acme.html").read_text())
    assert "2 counted devices not seen for 90 days; without them 0: OK" in report
    assert {r["Last seen"] for r in _evidence(workspace, "2026-11")} == {"2026-08-12"}
