"""Every worked example of rules.md, end to end: Lens exports in the inbox → reconciliation.csv."""
from datetime import date
from decimal import Decimal

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

from pipelines.core.config import Policy
from pipelines.core.months import Month
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
