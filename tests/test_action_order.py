"""The portfolio's "what needs action first" orders customers by what it costs to wait
(issue 30): the order rule on small built cases, one customer per kind of action."""

from decimal import Decimal

from builders import DEMO_MONTH, contract, make_workspace

from pipelines.core.config import load_config
from pipelines.core.i18n import Formats
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.reconciliation.month import compute_month
from pipelines.reconciliation.results import MonthResult, ReconciliationRow
from pipelines.reports.contents import portfolio
from pipelines.warehouse.connection import open_warehouse, run_sql

MONTH = "2026-11"


def _row(customer_id: str, status: str, amount: str | None = None, category="video"):
    return ReconciliationRow(customer_id, MONTH, category, status, devices_counted=10,
                             prorated_amount=Decimal(amount) if amount else None)


def test_customers_come_in_the_order_of_what_it_costs_to_wait(tmp_path):
    later = ("2026-01-01", "2027-02-28")  # renewal named in November, due in February
    soon = ("2026-01-01", "2027-01-31")
    year = ("2026-06-01", "2027-05-31")  # no renewal to name in November
    customers = [contract(name, term=year) for name in
                 ("okay", "quote", "watch", "nodata", "held", "trueup", "richer", "other")]
    customers += [contract("small", term=later), contract("big", term=later),
                  contract("soon", term=soon), contract("due", term=("2026-01-01", "2026-11-30"))]
    config = load_config(make_workspace(tmp_path, customers))
    rows = [_row("okay", "OK"), _row("small", "OK"), _row("big", "OK"), _row("quote", "OK"),
            _row("quote", "QUOTE_REQUIRED", category="audio"), _row("watch", "WATCH"),
            _row("nodata", "NO_DATA"), _row("held", "OK"), _row("due", "OK"), _row("soon", "OK"),
            _row("trueup", "TRUE_UP", "100.00"), _row("richer", "TRUE_UP", "900.00"),
            _row("other", "NOT_COVERED", category="audio"), _row("other", "OK")]
    result = MonthResult(Month.parse(MONTH), rows, [], [], {})

    lines, _ = portfolio(config, result, {"held": 1}, Formats("en"))

    assert [line.customer.id for line in lines] == [
        "richer", "trueup",  # true-ups, the larger amount first
        "due",  # a renewal due this month
        "watch",
        "soon", "big", "small",  # renewals due later, by date, then name
        "quote", "other", "nodata", "held",
        "okay",  # nothing to do: after all of these
    ]


def test_the_demo_names_the_renewal_due_now_before_every_customer_with_nothing_to_do(full_demo):
    # The demo's last month: lakeshore-health's term ends in it; other terms end within
    # three months, which once ranked them with it.
    config, month = load_config(Workspace.resolve(full_demo[0])), Month.parse(DEMO_MONTH)
    with open_warehouse(config.workspace, read_only=True) as con:
        result = compute_month(con, config, month)
        quarantined = dict(run_sql(con, "reports/portfolio_quarantined.sql",
                                   month=DEMO_MONTH).fetchall())
    lines, _ = portfolio(config, result, quarantined, Formats("en"))

    order = [line.customer.id for line in lines]
    all_ok = [line.customer.id for line in lines if not line.missing_upload
              and line.rma_status in ("", "OK") and set(line.statuses.values()) == {"OK"}
              and line.customer.id != "lakeshore-health"]
    assert all_ok
    assert all(order.index("lakeshore-health") < order.index(ok) for ok in all_ok), order
