"""The Poly+ Enterprise rules (../shared/spec/rules.md), driving the counting SQL in sql/.

SQL counts devices per customer, month and category; this module replays each contract's
term month by month from its first month, so the result for month M is a pure function of
the contract and the snapshots of the term's months up to M: re-running any month, in any
order, gives the same answer. Arithmetic is exact (integers and `Fraction`), never float.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from pipelines.core.catalog import CATEGORIES, ROW_CATEGORIES
from pipelines.core.config import Config, Customer, Policy
from pipelines.core.i18n import N_, NP_, Message
from pipelines.core.months import Month, month_range
from pipelines.core.progress import track
from pipelines.core.stored import plain, typed
from pipelines.core.timers import timed
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import (
    fetch_value,
    load_frame,
    open_warehouse,
    run_sql,
    transaction,
)

log = logging.getLogger("polyrecon")

OK, WATCH, TRUE_UP, NO_DATA = "OK", "WATCH", "TRUE_UP", "NO_DATA"
NOT_COVERED, QUOTE_REQUIRED, UNCLASSIFIED = "NOT_COVERED", "QUOTE_REQUIRED", "UNCLASSIFIED"
BREACH = "BREACH"


def to_cents(value: Fraction | int) -> Decimal:
    """Round half-up (away from zero on a tie) to two decimals, exactly."""
    value = Fraction(value)
    cents = (abs(value) * 200 + 1) // 2
    return Decimal(-cents if value < 0 else cents).scaleb(-2)


def _pct(value: Decimal | int) -> Fraction:
    return Fraction(value) / 100


def baseline(ordered: int, policy: Policy) -> Fraction:
    """ordered × (1 + buffer/100), kept exact (shown with two decimals)."""
    return ordered * (1 + _pct(policy.baseline_buffer_pct))


def growth_pct(counted: int, ordered: int) -> Decimal:
    return to_cents(Fraction(counted - ordered, ordered) * 100)


def decide_status(counted: int, ordered: int, policy: Policy) -> str:
    """TRUE_UP once growth reaches the trigger, WATCH once it used `watch` % of it (exact)."""
    trigger = Fraction(policy.true_up_trigger_pct)
    if counted * 100 >= ordered * (100 + trigger):
        return TRUE_UP
    if counted * 100 * 100 >= ordered * (100 * 100 + trigger * Fraction(
            policy.watch_at_pct_of_trigger)):
        return WATCH
    return OK


def remaining_months(start: Month, term_end: date) -> int:
    """Whole months from `start` through the month containing the term's end, both included."""
    return max(0, start.months_until(Month.of(term_end)) + 1)


def proration_start(month: Month, policy: Policy) -> Month:
    """The first month billed for a true-up found in `month` (policy.proration_start): what the
    amount is computed from and what the report says it was."""
    return month if policy.proration_start == "report_month" else month.plus(1)


def prorated_amount(devices: int, unit_price_per_year: Decimal, months: int) -> Decimal:
    return to_cents(devices * Fraction(unit_price_per_year) * months / 12)


@dataclass(frozen=True)
class MonthCounts:
    """Distinct devices of one month's snapshot per catalog category."""

    counted: dict[str, int] = field(default_factory=dict)
    end_of_life: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryMonth:
    """One selected category in one month of the replay."""

    month: Month
    category: str
    status: str
    ordered: int  # the ordered devices this month was reconciled against
    baseline: Fraction
    counted: int | None = None
    end_of_life: int | None = None
    true_up_devices: int | None = None
    proration_months: int | None = None
    amount: Decimal | None = None
    new_ordered: int | None = None


def replay_category(customer: Customer, category: str, counts: dict[Month, MonthCounts],
                    until: Month, policy: Policy) -> list[CategoryMonth]:
    """The term from its first month up to `until`, resetting the baseline on each true-up."""
    ordered = customer.ordered_for(category)
    unit_price = customer.categories[category].unit_price_per_year
    months = []
    for month in month_range(customer.term.first_month, min(until, customer.term.last_month)):
        snapshot = counts.get(month)
        if snapshot is None:
            months.append(CategoryMonth(month, category, NO_DATA, ordered,
                                        baseline(ordered, policy)))
            continue
        counted = snapshot.counted.get(category, 0)
        status = decide_status(counted, ordered, policy)
        result = CategoryMonth(month, category, status, ordered, baseline(ordered, policy),
                               counted, snapshot.end_of_life.get(category, 0))
        if status == TRUE_UP:
            proration = remaining_months(proration_start(month, policy), customer.term.end)
            added = counted - ordered
            result = CategoryMonth(**{**result.__dict__, "true_up_devices": added,
                                      "proration_months": proration,
                                      "amount": prorated_amount(added, unit_price, proration),
                                      "new_ordered": counted})
            ordered = counted
        months.append(result)
    return months


@dataclass(frozen=True)
class ReconciliationRow:
    """A row of reconciliation.csv, as numbers: None where the status has no value."""

    customer_id: str
    month: str
    category: str
    status: str
    devices_counted: int | None = None
    eol_excluded: int | None = None
    ordered_devices: int | None = None
    baseline: Decimal | None = None
    growth_pct: Decimal | None = None
    true_up_devices: int | None = None
    prorated_amount: Decimal | None = None
    currency: str = ""
    new_ordered_devices: int | None = None
    new_baseline: Decimal | None = None


@dataclass(frozen=True)
class RmaRow:
    customer_id: str
    year: int
    headset_rmas: int
    headset_base: int
    rma_rate_pct: Decimal
    status: str


def as_written(row: ReconciliationRow | RmaRow) -> dict[str, str]:
    """A row's values as reconciliation.csv, rma.csv and the warehouse's load take them:
    digits (amounts with two decimals), and an empty cell where there is no value."""
    return {name: "" if value is None else str(value) for name, value in vars(row).items()}


@dataclass(frozen=True)
class RenewalCategory:
    category: str
    ordered_devices: int
    unit_price_per_year: Decimal
    basis: Message  # how the number was found: the proposal's comment, the report's column


@dataclass(frozen=True)
class RenewalProposal:
    customer: Customer
    start: date
    end: date
    categories: tuple[RenewalCategory, ...]


@dataclass(frozen=True)
class MonthResult:
    month: Month
    rows: list[ReconciliationRow]
    rma: list[RmaRow]
    renewals: list[RenewalProposal]
    replays: dict[tuple[str, str], list[CategoryMonth]]  # (customer, category) → the term so far
    through_receipt: int = 0  # the latest snapshot received when it was computed


def _selected_row(customer: Customer, result: CategoryMonth, policy: Policy) -> ReconciliationRow:
    common = {"customer_id": customer.id, "month": str(result.month), "category": result.category,
                  "status": result.status, "ordered_devices": result.ordered,
                  "baseline": to_cents(result.baseline), "currency": customer.currency}
    if result.status == NO_DATA:
        return ReconciliationRow(**common)
    row = ReconciliationRow(**common, devices_counted=result.counted,
                            eol_excluded=result.end_of_life,
                            growth_pct=growth_pct(result.counted, result.ordered))
    if result.status != TRUE_UP:
        return row
    return replace(row, true_up_devices=result.true_up_devices, prorated_amount=result.amount,
                   new_ordered_devices=result.new_ordered,
                   new_baseline=to_cents(baseline(result.new_ordered, policy)))


def _unselected_rows(customer: Customer, month: Month, counts: MonthCounts | None
                     ) -> list[ReconciliationRow]:
    if counts is None:
        return []
    status_of = {"quote_only": QUOTE_REQUIRED, "unclassified": UNCLASSIFIED}
    rows = []
    for category in ROW_CATEGORIES:
        if category in customer.categories:
            continue
        counted = counts.counted.get(category, 0)
        end_of_life = counts.end_of_life.get(category, 0)
        if counted or end_of_life:
            rows.append(ReconciliationRow(
                customer.id, str(month), category, status_of.get(category, NOT_COVERED),
                devices_counted=counted, eol_excluded=end_of_life, currency=customer.currency))
    return rows


def rma_status(rmas: int, base: int, policy: Policy) -> str:
    """BREACH when the rate exceeds the threshold; WATCH from `watch` % of it (exact)."""
    threshold = Fraction(policy.rma_threshold_pct)
    if rmas * 100 > base * threshold:
        return BREACH
    if rmas * 100 * 100 >= base * threshold * Fraction(policy.watch_at_pct_of_trigger):
        return WATCH
    return OK


def _rma_row(customer: Customer, month: Month, rmas: int, base: int, policy: Policy) -> RmaRow:
    return RmaRow(customer.id, month.year, rmas, base, to_cents(Fraction(rmas * 100, base)),
                  rma_status(rmas, base, policy))


def next_term(start: date, end: date) -> tuple[date, date]:
    """The same length, starting the day after the current end. A term of whole calendar
    months (the usual case) stays whole months; any other term keeps its number of days."""
    new_start = end + timedelta(days=1)
    if start.day == 1 and end == Month.of(end).last_day:
        length = Month.of(start).months_until(Month.of(end))
        return new_start, Month.of(new_start).plus(length).last_day
    return new_start, new_start + (end - start)


def renewal_proposal(customer: Customer, replays: dict[str, list[CategoryMonth]]
                     ) -> RenewalProposal:
    """Footnote 6: every device added during the year goes into the next term."""
    proposed = []
    for category, months in replays.items():
        in_effect = months[-1].new_ordered or months[-1].ordered
        latest = next((m for m in reversed(months) if m.status != NO_DATA), None)
        if latest is None:
            basis = Message.of(N_("no inventory in this term: the ordered devices in effect"))
            count = in_effect
        else:
            count = max(latest.counted, in_effect)
            basis = Message.of(*NP_("%(counted)s device counted in %(month)s; %(ordered)s "
                                    "ordered in effect",
                                    "%(counted)s devices counted in %(month)s; %(ordered)s "
                                    "ordered in effect"), count="counted",
                               counted=latest.counted, month=str(latest.month), ordered=in_effect)
        proposed.append(RenewalCategory(category, count,
                                        customer.categories[category].unit_price_per_year, basis))
    start, end = next_term(customer.term.start, customer.term.end)
    return RenewalProposal(customer, start, end, tuple(proposed))


def _read_counts(con, customer_ids: list[str]) -> dict[str, dict[Month, MonthCounts]]:
    counts: dict[str, dict[Month, MonthCounts]] = {cid: {} for cid in customer_ids}
    for customer_id, month in run_sql(con, "reconcile/months_with_data.sql",
                                      customer_ids=customer_ids).fetchall():
        counts[customer_id][Month.parse(month)] = MonthCounts()
    for customer_id, month, category, counted, end_of_life in run_sql(
            con, "reconcile/category_counts.sql", customer_ids=customer_ids).fetchall():
        snapshot = counts[customer_id][Month.parse(month)]
        snapshot.counted[category] = counted
        snapshot.end_of_life[category] = end_of_life
    return counts


def reconcile_month(config: Config, month: Month, mark: bool = True) -> MonthResult:
    """Reconcile every customer whose term covers `month`, and store the result; with `mark`,
    also record it as up to date (without, the caller does once it published it:
    `mark_reconciled`, with `result.through_receipt`)."""
    with open_warehouse(config.workspace) as con:
        with transaction(con):
            store_catalog(con, config.catalog)
        through = fetch_value(con, "reconcile/latest_receipt.sql")
        result = replace(compute_month(con, config, month), through_receipt=through)
        with timed("store result"):
            _store(con, result, mark)
    return result


def mark_reconciled(config: Config, month: Month, through_receipt: int) -> None:
    """`month`'s stored result is published and up to date with the snapshots received up to
    `through_receipt` (later ones make it stale again)."""
    with open_warehouse(config.workspace) as con, transaction(con):
        run_sql(con, "reconcile/store_reconciled_month.sql", month=str(month), through=through_receipt)


def compute_month(con, config: Config, month: Month) -> MonthResult:
    """The month's result from the warehouse as it is (a read-only connection will do). The
    stage timer counts how often a process computes a month: the DAG does it once a run."""
    with timed("reconcile"):
        return _compute_month(con, config, month)


def _compute_month(con, config: Config, month: Month) -> MonthResult:
    customers = config.contracts.in_effect(month)
    ids = [c.id for c in customers]
    counts = _read_counts(con, ids)
    rmas = dict(run_sql(con, "reconcile/headset_rmas.sql", customer_ids=ids,
                        year_start=date(month.year, 1, 1), month_end=month.last_day).fetchall())
    result = MonthResult(month, [], [], [], {})
    for customer in track(customers, f"Reconciling {month}"):
        _reconcile_customer(customer, month, counts[customer.id], rmas.get(customer.id, 0),
                            config.policy, result)
    result.rows.sort(key=lambda r: (r.customer_id, ROW_CATEGORIES.index(r.category)))
    result.rma.sort(key=lambda r: r.customer_id)
    result.renewals.extend(_renewals(customers, month, result.replays))
    return result


def _reconcile_customer(customer: Customer, month: Month, counts: dict[Month, MonthCounts],
                        headset_rmas: int, policy: Policy, result: MonthResult) -> None:
    replays = {category: replay_category(customer, category, counts, month, policy)
               for category in CATEGORIES if category in customer.categories}
    for category, months in replays.items():
        result.replays[(customer.id, category)] = months
        result.rows.append(_selected_row(customer, months[-1], policy))
    result.rows.extend(_unselected_rows(customer, month, counts.get(month)))
    if "headset" in replays:
        base = replays["headset"][-1].ordered  # the ordered value M was reconciled against
        result.rma.append(_rma_row(customer, month, headset_rmas, base, policy))


def _renewals(customers: list[Customer], month: Month,
              replays: dict[tuple[str, str], list[CategoryMonth]]) -> list[RenewalProposal]:
    """The renewal proposals of the customers whose term ends with `month`, from their replays
    (computed now, or stored: a customer the stored result does not cover has none)."""
    return [renewal_proposal(customer, {category: replays[(customer.id, category)]
                                        for category in CATEGORIES
                                        if category in customer.categories})
            for customer in customers
            if month == customer.term.last_month
            and all((customer.id, category) in replays for category in customer.categories)]


def _store(con, result: MonthResult, mark: bool) -> None:
    import pandas as pd

    def frame(row_type, rows):
        return pd.DataFrame([as_written(r) for r in rows],
                            columns=list(row_type.__dataclass_fields__))

    with transaction(con):
        load_frame(con, "reconcile/store_reconciliation.sql", frame(ReconciliationRow, result.rows),
                   month=str(result.month))
        load_frame(con, "reconcile/store_rma_results.sql", frame(RmaRow, result.rma),
                   month=str(result.month))
        run_sql(con, "reconcile/store_month_result.sql", month=str(result.month),
                through=result.through_receipt, result=result_json(result))
        if mark:
            run_sql(con, "reconcile/store_reconciled_month.sql", month=str(result.month),
                    through=result.through_receipt)


def result_json(result: MonthResult) -> str:
    """The month's result as reports and e-mails read it, exactly (core/stored.py)."""
    return json.dumps({
        "rows": [plain(row) for row in result.rows], "rma": [plain(row) for row in result.rma],
        "replays": [[customer_id, category, [plain(m) for m in months]]
                    for (customer_id, category), months in result.replays.items()]},
        sort_keys=True)


def stored_month(con, config: Config, month: Month) -> MonthResult | None:
    """The result `reconcile` last stored for `month`, read without recomputing it; None when
    the month was never reconciled. Renewal proposals follow from the stored replays."""
    found = run_sql(con, "reconcile/stored_month_result.sql", month=str(month)).fetchall()
    if not found:
        return None
    through, text = found[0]
    data = json.loads(text)
    replays = {(customer_id, category): [typed(CategoryMonth, m) for m in months]
               for customer_id, category, months in data["replays"]}
    return MonthResult(month, [typed(ReconciliationRow, row) for row in data["rows"]],
                       [typed(RmaRow, row) for row in data["rma"]],
                       _renewals(config.contracts.in_effect(month), month, replays), replays,
                       through)
