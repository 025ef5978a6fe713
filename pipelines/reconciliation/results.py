"""What a month's reconciliation yields, as every later stage reads it: the reports, the
e-mails, the result files and the jobs import these types, never the rules that compute them
(pipelines/reconcile.py) nor how they are stored (month.py).

Rows hold numbers (None where a status has no value); `as_written` is how the machine files
and the e-mail ledger have always seen them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from pipelines.core.config import Customer
from pipelines.core.i18n import Formats, Message, english
from pipelines.core.months import Month

OK, WATCH, TRUE_UP, NO_DATA = "OK", "WATCH", "TRUE_UP", "NO_DATA"
NOT_COVERED, QUOTE_REQUIRED, UNCLASSIFIED = "NOT_COVERED", "QUOTE_REQUIRED", "UNCLASSIFIED"
BREACH = "BREACH"


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
    # rules.md "Devices not seen", where the category's policy is flag or exclude (all None
    # under count, and in a month without data): the policy and its days; the counted devices
    # Lens last saw more than that many days before the month's end (exclude: left out of
    # `counted`); the counted devices without a last-seen day (they count); under flag, the
    # status the month would have without the devices not seen.
    not_seen_policy: str | None = None
    not_seen_days: int | None = None
    not_seen: int | None = None
    last_seen_unknown: int | None = None
    status_without_not_seen: str | None = None

    @property
    def last_seen_not_known(self) -> bool:
        """No counted device has a last-seen day: every one counts, and the report says so."""
        return self.not_seen_policy is not None and self.not_seen == 0 \
            and bool(self.counted) and self.last_seen_unknown == self.counted


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
    """A row's values as reconciliation.csv and rma.csv write them and the e-mail ledger keys
    them: digits (amounts with two decimals), and an empty cell where there is no value."""
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
class ResultChange:
    """A customer's category (or headset RMA rate: topic "rma") whose result a reconciliation
    changed against the one stored before: what a run must say it changed."""
    month: str
    customer_id: str
    topic: str
    before: str  # the status, with the true-up's devices and amount or the RMA rate
    after: str


@dataclass(frozen=True)
class MonthResult:
    month: Month
    rows: list[ReconciliationRow]
    rma: list[RmaRow]
    renewals: list[RenewalProposal]
    replays: dict[tuple[str, str], list[CategoryMonth]]  # (customer, category) → the term so far
    through_receipt: int = 0  # the latest snapshot received when it was computed
    changes: tuple[ResultChange, ...] = ()  # against the result stored before this one


def _stated(row: ReconciliationRow | RmaRow | None) -> str:
    """A result as the command line names it, in its English words."""
    words = Formats("en")
    if row is None:
        return "no result"
    if isinstance(row, RmaRow):
        return f"{words.status(row.status)} {row.rma_rate_pct} %"
    if row.status == TRUE_UP:
        return (f"{words.status(TRUE_UP)} "
                + english("+%(num)s device", "+%(num)s devices", row.true_up_devices)
                + f" {row.prorated_amount} {row.currency}")
    return words.status(row.status)


def changes_between(before: MonthResult | None, after: MonthResult) -> tuple[ResultChange, ...]:
    """Each category and RMA rate whose status, true-up or rate differs between two results of
    the same month; none against no result before (a first reconciliation changes nothing)."""
    if before is None:
        return ()

    def keyed(result: MonthResult) -> dict[tuple[str, str], str]:
        found = {(r.customer_id, r.category): _stated(r) for r in result.rows}
        found.update({(r.customer_id, "rma"): _stated(r) for r in result.rma})
        return found

    old, new = keyed(before), keyed(after)
    return tuple(ResultChange(str(after.month), customer_id, topic,
                              old.get((customer_id, topic), "no result"),
                              new.get((customer_id, topic), "no result"))
                 for customer_id, topic in sorted(old.keys() | new.keys())
                 if old.get((customer_id, topic)) != new.get((customer_id, topic)))
