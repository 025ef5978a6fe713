"""What a CSM report shows, gathered from the month's result and the warehouse (read-only)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pipelines.core.catalog import CATEGORIES
from pipelines.core.config import Config, Customer
from pipelines.core.i18n import N_, NP_, Formats, Message
from pipelines.core.months import Month
from pipelines.raw.quality import MAC_PATTERN, SERIAL_PATTERN
from pipelines.reconcile import next_term_start, to_cents
from pipelines.reconciliation.results import (
    NO_DATA,
    TRUE_UP,
    WATCH,
    CategoryMonth,
    MonthResult,
    ReconciliationRow,
    RenewalProposal,
    RmaRow,
)
from pipelines.warehouse.connection import run_sql

LIST_LIMIT = 50  # devices per list in the report; the rest are counted, not listed
FINDING_LIMIT = 10  # devices a data-quality finding names; the rest are counted
SITE_LIMIT = 50  # sites in "Devices per site"; the smaller rest make one line
# What needs action first, by what it costs to wait (issue 30): true-ups and RMA breaches, a
# renewal due this month, WATCH, renewals due later, quote-only products, devices not covered or
# unclassified, missing uploads, rejected uploads; customers with nothing to do last.
ACTION_ORDER = {"TRUE_UP": 0, "BREACH": 0, "RENEWAL_DUE": 1, "WATCH": 2, "RENEWAL": 3,
                "QUOTE_REQUIRED": 4, "NOT_COVERED": 5, "UNCLASSIFIED": 5, "NO_DATA": 6,
                "REJECTED": 7, "OK": 8, "ONBOARDING": 8}
RENEWAL_NOTICE_MONTHS = 3  # a renewal is named from this many months before the term's last


def months_to_renewal(customer: Customer, month: Month) -> int | None:
    """Months from `month` to the last month of the term in effect, when a renewal is to be
    named (within RENEWAL_NOTICE_MONTHS, and no next term in contracts.yaml yet)."""
    months_left = month.months_until(customer.term.last_month)
    if 0 <= months_left <= RENEWAL_NOTICE_MONTHS and not customer.has_term_after(month):
        return months_left
    return None


@dataclass(frozen=True)
class Projection:
    months: int | None  # months until the count reaches the trigger; None when not rising
    month: Month | None
    target: int


ONBOARDING = "ONBOARDING"  # how a month before the customer's first inventory is shown


# rules.md "Devices not seen": what a category's month says of its counted devices not seen.
_NOT_SEEN_FLAGGED = NP_(
    "%(num)s counted device not seen for %(days)s days; without it %(without)s: %(status)s",
    "%(num)s counted devices not seen for %(days)s days; without them %(without)s: %(status)s")
_NOT_SEEN_EXCLUDED = NP_(
    "%(num)s device not seen for %(days)s days is left out of the count",
    "%(num)s devices not seen for %(days)s days are left out of the count")


def not_seen_text(month: CategoryMonth, formats: Formats) -> str | None:
    """How many counted devices were not seen, and under `flag` the status without them ("8
    counted devices not seen for 90 days; without them 98: OK"); None where none were found, or
    the policy is `count`."""
    if not month.not_seen:
        return None
    values = {"num": formats.number(month.not_seen), "days": formats.number(month.not_seen_days)}
    if month.not_seen_policy == "flag":
        return formats.ngettext(*_NOT_SEEN_FLAGGED, month.not_seen) % {
            **values, "without": formats.number(month.counted - month.not_seen),
            "status": formats.status(month.status_without_not_seen)}
    return formats.ngettext(*_NOT_SEEN_EXCLUDED, month.not_seen) % values


@dataclass(frozen=True)
class CategorySummary:
    row: ReconciliationRow
    history: list[CategoryMonth]
    unit_price: Decimal
    projection: Projection | None
    before_onboarding: int = 0  # the history's first months, before the first inventory

    @property
    def status(self) -> str:
        """The month's status as the report shows it."""
        return ONBOARDING if self.before_onboarding == len(self.history) else self.row.status

    def not_seen_text(self, formats: Formats) -> str | None:
        return not_seen_text(self.history[-1], formats)


def months_before_onboarding(history: list[CategoryMonth], customer: Customer) -> int:
    """How many of the term's first months in `history` came before the customer's
    onboarding: months without inventory before its first snapshot in the term, or before
    the `first_month` the partner named."""
    has_data = any(m.status != NO_DATA for m in history)
    before = 0
    for month in history:
        if month.status != NO_DATA or not (has_data or customer.before_onboarding(month.month)):
            break
        before += 1
    return before


@dataclass
class DeviceList:
    kind: str
    title: str  # English, translated where it is shown
    explanation: str
    rows: list[dict] = field(default_factory=list)
    total: int = 0
    values: dict = field(default_factory=dict)  # the places in title and explanation


@dataclass(frozen=True)
class ModelCounts:
    rows: list[tuple[str, int]]  # model as Lens names it, devices; most first, LIST_LIMIT at most
    models: int
    devices: int


@dataclass(frozen=True)
class Finding:
    """A data-quality finding as the report shows it, with the rows it is about."""
    source: str
    severity: str
    message: Message
    rows: list[dict] = field(default_factory=list)  # row, identity, value: FINDING_LIMIT at most
    total: int = 0  # rows it is about

    def devices(self, formats: Formats) -> str:
        """The rows it is about, each by its device and the value at fault where that says
        more, then how many more: "AB-1 (row 5), 00:1 (row 9) and 3 more"."""
        names = []
        for row in self.rows:
            identity = row["identity"] and _shown_identity(row["identity"])
            value = row["value"]
            if identity and value and value.upper() != identity:
                text = N_("%(identity)s (%(value)s, row %(row)s)")
            elif identity or value:
                text = N_("%(name)s (row %(row)s)")
            else:
                text = N_("row %(row)s")
            names.append(formats.gettext(text) % {
                "identity": identity, "value": value, "name": identity or value,
                "row": formats.number(row["row"])})
        more = self.total - len(self.rows)
        if more:
            return formats.ngettext("%(devices)s and %(num)s more", "%(devices)s and %(num)s more",
                                    more) % {"devices": ", ".join(names),
                                             "num": formats.number(more)}
        return ", ".join(names)


@dataclass
class CustomerReport:
    customer: Customer
    month: Month
    summaries: list[CategorySummary]
    other_rows: list[ReconciliationRow]  # not covered, quote-only, unclassified
    rma: RmaRow | None
    renewal: RenewalProposal | None
    snapshot: tuple | None  # (source, source_name, received_at, rows, a pull's Lens region)
    # site, devices per category, total: the SITE_LIMIT largest, then the rest as one line
    # (how many sites, their devices per category, their total), or None
    sites: tuple[list[tuple[str, dict[str, int], int]], tuple[int, dict[str, int], int] | None]
    changes: tuple[int, int, int] | None  # devices added, removed, moved against the month before
    lists: list[DeviceList]
    findings: list[Finding]
    # not_counted models (accessories, Lens software, other makers' products)
    not_counted: ModelCounts | None = None
    rma_numbers: list[str] = field(default_factory=list)  # the year's, LIST_LIMIT at most
    # ("Added"/"Removed"/"Moved" title, the first LIST_LIMIT devices, how many) against the
    # month before
    changed_devices: list[tuple[str, list[dict], int]] = field(default_factory=list)
    # in the term's last month: where the next term starts, and a new baseline applies
    next_term: date | None = None
    # rules.md "Devices not seen": the contract's categories whose policy flags or excludes
    # them (`flag` / `exclude`) as the month was reconciled, and the policy's days
    not_seen: dict[str, str] = field(default_factory=dict)
    not_seen_days: int = 0


def projection(history: list[CategoryMonth], trigger_pct: Decimal) -> Projection | None:
    """A straight line through the counts since the last baseline reset: the month it reaches
    the true-up trigger. Stated in the report as the simple projection it is."""
    current = history[-1]
    since_reset = []
    for month in history:
        if month.status == TRUE_UP:
            since_reset = []
        elif month.status != NO_DATA:
            since_reset.append(month)
    target = math.ceil(current.ordered * (100 + trigger_pct) / 100)
    if len(since_reset) < 2 or current.counted is None:
        return Projection(None, None, target)
    first, last = since_reset[0], since_reset[-1]
    span = first.month.months_until(last.month)
    slope = (last.counted - first.counted) / span if span else 0
    if slope <= 0:
        return Projection(None, None, target)
    months = max(1, math.ceil((target - last.counted) / slope))
    return Projection(months, last.month.plus(months), target)


def _not_seen_rule(device: tuple, not_seen: dict[str, str]) -> str | None:
    """`flag` or `exclude` for a counted device not seen for the policy's days, else None."""
    _, _, _, category, is_eol, _, _, _, is_not_seen = device
    return not_seen.get(category) if is_not_seen and not is_eol else None


def _lists(customer: Customer, devices: list[tuple], not_seen: dict[str, str], days: int
           ) -> list[DeviceList]:
    selected = set(customer.categories)
    lists = {kind: DeviceList(kind, title, explanation) for kind, title, explanation in (
        ("eol", N_("End-of-life devices"), N_("past their end of service: not covered and not "
                                              "counted (Poly+ Enterprise datasheet, footnotes "
                                              "1 and 3)")),
        ("not_seen_excluded", N_("Devices not seen for %(days)s days, not counted"),
         N_("Poly Lens last saw them more than %(days)s days before the month's end: left out "
            "of the count (policy: exclude)")),
        ("not_seen_flagged", N_("Devices not seen for %(days)s days, counted"),
         N_("Poly Lens last saw them more than %(days)s days before the month's end: counted, "
            "but probably no longer in use; ask the customer before quoting (policy: flag)")),
        ("not_covered", N_("Devices of categories not covered"),
         N_("the contract does not select their category")),
        ("quote_only", N_("Quote-only products"),
         N_("ITP, Medialign, vertical solutions and infrastructure need a separate quote")),
        ("unclassified", N_("Unclassified models"),
         N_("the catalog does not know the model: add it to config/catalog.csv")),
        ("duplicates", N_("Devices listed more than once"), N_("counted once")),
    )}
    for found in lists.values():
        found.values = {"days": days}
    for device in devices:
        identity, model, site, category, is_eol, end_of_service, times_listed, last_seen, _ = \
            device
        entry = {"identity": _shown_identity(identity), "model": model, "site": site,
                 "category": category, "end_of_service": end_of_service,
                 "times_listed": times_listed, "last_seen": last_seen}
        if category == "not_counted":
            continue  # no covered device: counted per model (_not_counted), never listed
        rule = _not_seen_rule(device, not_seen)
        if is_eol:
            kind = "eol"
        elif rule:
            kind = "not_seen_excluded" if rule == "exclude" else "not_seen_flagged"
        elif category in ("quote_only", "unclassified"):
            kind = category
        elif category not in selected:
            kind = "not_covered"
        else:
            kind = None
        for name in filter(None, (kind, "duplicates" if times_listed > 1 else None)):
            target = lists[name]
            target.total += 1
            if len(target.rows) < LIST_LIMIT:
                target.rows.append(entry)
    return [found for found in lists.values() if found.total]


def _shown_identity(identity: str) -> str:
    """A device's identity as a CSM reads it: `serial:ABC123` shows as ABC123."""
    return identity.split(":", 1)[1]


def _not_counted(devices: list[tuple]) -> ModelCounts | None:
    """Devices per not_counted model as Lens names it, most first."""
    per_model = Counter(model for _, model, _, category, *_ in devices
                        if category == "not_counted")
    if not per_model:
        return None
    ranked = sorted(per_model.items(), key=lambda item: (-item[1], item[0]))
    return ModelCounts(ranked[:LIST_LIMIT], len(ranked), sum(per_model.values()))


SiteLine = tuple[str, dict[str, int], int]  # site, counted devices per category, their total


def _sites(customer: Customer, devices: list[tuple], not_seen: dict[str, str]
           ) -> tuple[list[SiteLine], tuple[int, dict[str, int], int] | None]:
    per_site: dict[str, Counter] = {}
    for device in devices:
        _, _, site, category, is_eol, *_ = device
        if not is_eol and category in customer.categories \
                and _not_seen_rule(device, not_seen) != "exclude":
            per_site.setdefault(site or "(no site)", Counter())[category] += 1
    sites = [(site, dict(counts), sum(counts.values()))
             for site, counts in sorted(per_site.items())]
    if len(sites) <= SITE_LIMIT:
        return sites, None
    largest = sorted(sites, key=lambda s: (-s[2], s[0]))[:SITE_LIMIT]
    rest = [s for s in sites if s not in largest]
    beyond: Counter = Counter()
    for _, counts, _ in rest:
        beyond.update(counts)
    return sorted(largest), (len(rest), dict(beyond), sum(beyond.values()))


def customer_report(con, config: Config, result: MonthResult, customer: Customer
                    ) -> CustomerReport:
    month = result.month
    rows = [r for r in result.rows if r.customer_id == customer.id]
    summaries = []
    for category in CATEGORIES:
        if category not in customer.categories:
            continue
        history = result.replays[(customer.id, category)]
        row = next(r for r in rows if r.category == category)
        summaries.append(CategorySummary(
            row, history, customer.categories[category].unit_price_per_year,
            projection(history, config.policy.true_up_trigger_pct)
            if row.status == WATCH else None, months_before_onboarding(history, customer)))
    not_seen, days = _not_seen_rules(summaries, config)
    params = {"customer_id": customer.id, "month": str(month)}
    devices = run_sql(con, "reports/report_devices.sql", **params,
                      not_seen_days=days).fetchall()
    snapshot = run_sql(con, "reports/report_snapshot.sql", **params).fetchall()
    added, removed, had_previous, moved = run_sql(
        con, "reports/report_changes.sql", **params, previous=str(month.plus(-1))).fetchall()[0]
    named = {(subject, check): (rows, total) for subject, check, total, rows in run_sql(
        con, "reports/report_finding_devices.sql", **params, serial_pattern=SERIAL_PATTERN,
        mac_pattern=MAC_PATTERN, limit=FINDING_LIMIT).fetchall()}
    findings = [Finding(source, severity, Message.stored(message_json, message),
                        *named.get((subject, check), ([], 0)))
                for source, severity, message, message_json, subject, check in run_sql(
                    con, "reports/report_findings.sql", **params,
                    year_start=f"{month.year}-01").fetchall()]
    rma_numbers = [number for (number,) in run_sql(
        con, "reports/report_rma_numbers.sql", customer_id=customer.id,
        year_start=date(month.year, 1, 1), month_end=month.last_day, limit=LIST_LIMIT
    ).fetchall()]
    changed = run_sql(con, "reports/report_changed_devices.sql", **params,
                      previous=str(month.plus(-1)), limit=LIST_LIMIT).fetchall()
    return CustomerReport(
        customer, month, summaries,
        [r for r in rows if r.category not in customer.categories],
        next((r for r in result.rma if r.customer_id == customer.id), None),
        next((p for p in result.renewals if p.customer.id == customer.id), None),
        snapshot[0] if snapshot else None, _sites(customer, devices, not_seen),
        (added, removed, moved) if snapshot and had_previous else None,
        _lists(customer, devices, not_seen, days), findings, _not_counted(devices),
        rma_numbers, _changed_devices(changed) if snapshot and had_previous else [],
        next_term_start(customer) if month == customer.term.last_month else None,
        not_seen, days)


def _not_seen_rules(summaries: list[CategorySummary], config: Config
                    ) -> tuple[dict[str, str], int]:
    """The categories whose policy flags or excludes devices not seen, and the days, as the
    month was reconciled (the policy's, for a month without data)."""
    months = [s.history[-1] for s in summaries if s.history[-1].not_seen_policy]
    return ({m.category: m.not_seen_policy for m in months},
            months[0].not_seen_days if months else config.policy.not_seen_days)


def _changed_devices(changed: list[tuple]) -> list[tuple[str, list[dict], int]]:
    found = []
    for change, title in (("added", N_("Added")), ("removed", N_("Removed")),
                          ("moved", N_("Moved to another site"))):
        rows = [row for row in changed if row[0] == change]
        found.append((title, [{"identity": _shown_identity(identity), "model": model,
                               "site": site, "site_before": site_before}
                              for _, identity, model, site, site_before, _ in rows],
                      rows[0][5] if rows else 0))
    return found


@dataclass(frozen=True)
class PortfolioLine:
    customer: Customer
    statuses: dict[str, str]
    true_up_amount: Decimal
    rma_status: str  # "" where there is no verdict (no inventory for the month)
    missing_upload: bool
    action: int  # lower first
    notes: list[str] = field(default_factory=list)  # what else needs doing, in plain words


def portfolio(config: Config, result: MonthResult, quarantined: dict[str, int],
              formats: Formats) -> tuple[list[PortfolioLine], dict[str, Decimal]]:
    lines, totals = [], {}
    month = result.month
    for customer in config.contracts.in_effect(month):
        all_rows = [r for r in result.rows if r.customer_id == customer.id]
        rows = [r for r in all_rows if r.category in customer.categories]
        if not rows:
            continue
        amount = sum((r.prorated_amount for r in rows if r.prorated_amount is not None),
                     Decimal("0.00"))
        onboarding = customer.before_onboarding(month)
        statuses = {r.category: ONBOARDING if onboarding else r.status for r in rows}
        has_data = any(s not in (NO_DATA, ONBOARDING) for s in statuses.values())
        rma = next((r.status for r in result.rma if r.customer_id == customer.id), "") \
            if has_data else ""
        kinds, notes = [*statuses.values(), rma or "OK"], []
        months_left = months_to_renewal(customer, month)
        end = formats.date(customer.term.end)
        if months_left is not None:
            kinds.append("RENEWAL_DUE" if months_left == 0 else "RENEWAL")
            notes.append(formats.gettext("renewal due: the term ends %(end)s") % {"end": end}
                         if months_left == 0 else formats.ngettext(
                             "renewal in %(num)s month (the term ends %(end)s)",
                             "renewal in %(num)s months (the term ends %(end)s)",
                             months_left) % {"num": months_left, "end": end})
        for category in (c for c in CATEGORIES if c in customer.categories):
            replay = result.replays.get((customer.id, category))
            said = replay and not_seen_text(replay[-1], formats)
            if said:
                notes.append(f"{formats.category(category)}: {said}")
        for row in all_rows:
            if row.category not in customer.categories and row.devices_counted:
                kinds.append(row.status)
                notes.append(formats.ngettext(*_OTHER[row.status], row.devices_counted)
                             % {"num": formats.number(row.devices_counted)})
        if quarantined.get(customer.id):
            kinds.append("REJECTED")
            count = quarantined[customer.id]
            notes.append(formats.ngettext("%(num)s upload rejected: see %(folder)s",
                                          "%(num)s uploads rejected: see %(folder)s", count)
                         % {"num": formats.number(count), "folder": f"quarantine/{customer.id}/"})
        action = min(ACTION_ORDER.get(k, ACTION_ORDER["OK"]) for k in kinds)
        lines.append(PortfolioLine(customer, statuses, to_cents(amount), rma,
                                   NO_DATA in statuses.values(), action, notes))
        totals[customer.currency] = totals.get(customer.currency, Decimal("0.00")) + amount
    lines.sort(key=_action_first)
    return lines, {currency: to_cents(total) for currency, total in sorted(totals.items())}


def _action_first(line: PortfolioLine) -> tuple:
    """Lower action first; renewals due later by their date; then the larger amount, the name."""
    renews = line.customer.term.end if line.action == ACTION_ORDER["RENEWAL"] else date.min
    return line.action, renews, -line.true_up_amount, line.customer.name, line.customer.id


_OTHER = {
    "QUOTE_REQUIRED": NP_("%(num)s quote-only device: a separate quote",
                          "%(num)s quote-only devices: a separate quote"),
    "NOT_COVERED": NP_("%(num)s device of a category the contract does not cover",
                       "%(num)s devices of a category the contract does not cover"),
    "UNCLASSIFIED": NP_("%(num)s device of a model the catalog does not know",
                        "%(num)s devices of a model the catalog does not know"),
}
