"""The Poly+ Enterprise rules (../shared/spec/rules.md): the rules alone, as pure functions.

SQL counts devices per customer, month and category (reconciliation/month.py reads the counts
and stores what these rules make of them); this module replays each contract's term month by
month from its first month, so the result for month M is a pure function of the contract and
the snapshots of the term's months up to M: re-running any month, in any order, gives the same
answer. Arithmetic is exact (integers and `Fraction`), never float.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from pipelines.core.catalog import CATEGORIES, ROW_CATEGORIES
from pipelines.core.config import Customer, Policy
from pipelines.core.i18n import N_, NP_, Message
from pipelines.core.months import Month, month_range
from pipelines.core.progress import track
from pipelines.reconciliation.results import (
    BREACH,
    NO_DATA,
    NOT_COVERED,
    OK,
    QUOTE_REQUIRED,
    TRUE_UP,
    UNCLASSIFIED,
    WATCH,
    CategoryMonth,
    MonthResult,
    ReconciliationRow,
    RenewalCategory,
    RenewalProposal,
    RmaRow,
)


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
    """Distinct devices of one month's snapshot per catalog category: counted, end of life,
    and of those counted, the ones not seen for the policy's days and the ones with a
    last-seen day at all."""

    counted: dict[str, int] = field(default_factory=dict)
    end_of_life: dict[str, int] = field(default_factory=dict)
    not_seen: dict[str, int] = field(default_factory=dict)
    seen_known: dict[str, int] = field(default_factory=dict)


def not_seen_applied(counts: MonthCounts, category: str, ordered: int, policy: Policy
                     ) -> tuple[int, dict]:
    """rules.md "Devices not seen": the category's count under its policy, and what the month
    records of the devices not seen (CategoryMonth's not_seen_* fields; none under count)."""
    counted = counts.counted.get(category, 0)
    rule = policy.not_seen_for(category)
    if rule == "count":
        return counted, {}
    not_seen = counts.not_seen.get(category, 0)
    found = {"not_seen_policy": rule, "not_seen_days": policy.not_seen_days,
             "not_seen": not_seen,
             "last_seen_unknown": counted - counts.seen_known.get(category, 0)}
    if rule == "exclude":
        return counted - not_seen, found
    return counted, {**found, "status_without_not_seen": decide_status(counted - not_seen,
                                                                       ordered, policy)}


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
        counted, not_seen = not_seen_applied(snapshot, category, ordered, policy)
        status = decide_status(counted, ordered, policy)
        result = CategoryMonth(month, category, status, ordered, baseline(ordered, policy),
                               counted, snapshot.end_of_life.get(category, 0), **not_seen)
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
    """rules.md "Renewal": the same number of whole months, from the day after the current end
    (the 1st of the month after it, when the term ends mid-month, so that no month belongs to
    two terms) to the day before the next anniversary. A term from 29 February has twelve
    whole months like any other."""
    after = end + timedelta(days=1)  # the first day the term does not cover
    whole_months = (after.year - start.year) * 12 + after.month - start.month \
        - (after.day < start.day)
    first = Month.of(after) if after.day == 1 else Month.of(after).plus(1)
    return first.first_day, first.plus(max(whole_months, 1) - 1).last_day


def next_term_start(customer: Customer) -> date:
    """Where the term in effect hands over, and a new baseline found in its last month
    applies: the next term in the contract, else the one a renewal proposes."""
    later = [t.term.start for t in customer.all_terms if t.term.start > customer.term.end]
    return later[0] if later else next_term(customer.term.start, customer.term.end)[0]


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


def reconcile_customers(month: Month, customers: Sequence[Customer],
                        counts: dict[str, dict[Month, MonthCounts]], headset_rmas: dict[str, int],
                        policy: Policy) -> MonthResult:
    """The month's result for the customers whose term covers it, from their snapshots' counts
    (per customer and month) and the headset RMAs of the month's year up to its end."""
    result = MonthResult(month, [], [], [], {})
    for customer in track(customers, f"Reconciling {month}"):
        _reconcile_customer(customer, month, counts[customer.id],
                            headset_rmas.get(customer.id, 0), policy, result)
    result.rows.sort(key=lambda r: (r.customer_id, ROW_CATEGORIES.index(r.category)))
    result.rma.sort(key=lambda r: r.customer_id)
    result.renewals.extend(renewals(customers, month, result.replays))
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


def renewals(customers: Sequence[Customer], month: Month,
             replays: dict[tuple[str, str], list[CategoryMonth]]) -> list[RenewalProposal]:
    """The renewal proposals of the customers whose term ends with `month`, from their replays
    (computed now, or stored: a customer the stored result does not cover has none)."""
    return [renewal_proposal(customer, {category: replays[(customer.id, category)]
                                        for category in CATEGORIES
                                        if category in customer.categories})
            for customer in customers
            if month == customer.term.last_month
            and all((customer.id, category) in replays for category in customer.categories)]
