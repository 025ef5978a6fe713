"""`status`: what the warehouse holds, for the partner's operations staff."""
from __future__ import annotations

import os
from datetime import UTC, datetime

from pipelines.core.config import Config
from pipelines.core.i18n import Formats, english
from pipelines.core.months import MONTH_FORMS, Month, month_in_name
from pipelines.core.visible import visible
from pipelines.reports.contents import months_to_renewal
from pipelines.warehouse.connection import open_warehouse, run_sql, warehouse_exists

STATUS_LIST_LIMIT = 20  # entries named per list; a partner with years of them sees the newest
WORDS = Formats("en")  # categories and statuses in words (the keys stay in the CSV files)


def _month_ranges(months: list[str]) -> str:
    """['2026-01', '2026-02', '2026-04'] → '2026-01..2026-02, 2026-04'."""
    spans: list[list[Month]] = []
    for month in sorted(Month.parse(m) for m in months):
        if spans and spans[-1][1].plus(1) == month:
            spans[-1][1] = month
        else:
            spans.append([month, month])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)


def _open(config: Config, month: str, customer_id: str, status: str) -> bool:
    """A true-up stays open until the month no longer says it or the customer's term is renewed
    (the next term carries every device the true-up added: the quote was acted on);
    docs/decisions.md "open-alerts"."""
    customer = config.contracts.get(customer_id)
    if status != "TRUE_UP" or customer is None:
        return True
    return not customer.has_term_after(Month.parse(month))


def _alert(month: str, customer_id: str, topic: str, status: str, counted: int, ordered: int,
           pct, added: int, amount, currency: str, new_baseline) -> str:
    """An open alert (sql/jobs/status_alerts.sql) in words: `2026-04 acme Video True-up: +2
    devices, 270.00 EUR, new baseline 12.60`."""
    if topic == "rma":
        return (f"{month} {customer_id} RMA {WORDS.status(status)}: {pct} % ("
                + english("%(num)s headset RMA", "%(num)s headset RMAs", counted) + ", "
                + english("%(num)s headset", "%(num)s headsets", ordered) + ")")
    about = f"{month} {customer_id} {WORDS.category(topic)} {WORDS.status(status)}: "
    if status == "TRUE_UP":
        return (about + english("+%(num)s device", "+%(num)s devices", added)
                + f", {amount} {currency}, new baseline {new_baseline}")
    return (about + english("%(num)s device", "%(num)s devices", counted)
            + f" against {ordered} ordered, growth {pct} %")


def describe(config: Config) -> str:
    workspace = config.workspace
    lines = [f"Workspace {workspace.home}"]
    lake = config.partner.warehouse.ducklake
    lines.append(f"Warehouse: DuckLake, catalog {lake.catalog}, data {lake.data_path}" if lake
                 else f"Warehouse: {workspace.relative(workspace.warehouse)} (embedded DuckDB)")
    if not warehouse_exists(workspace):
        customers = ", ".join(c.id for c in config.contracts.customers) or "none"
        return "\n".join(lines + [f"Customers: {customers}",
                                  "No data yet: run `python -m pipelines ingest`."])
    with open_warehouse(workspace, read_only=True) as con:
        months = dict(run_sql(con, "jobs/status_months.sql").fetchall())
        alerts = run_sql(con, "jobs/status_alerts.sql").fetchall()
        # The ledger keeps every rejection; what waits is only what is still in quarantine/
        # (a file moved away was dealt with). A quarantined link counts, wherever it points.
        quarantined = [(path, reason) for path, reason
                       in run_sql(con, "jobs/status_quarantine.sql").fetchall()
                       if os.path.lexists(workspace.home / path)]
        held = [(path, reason) for _, path, reason
                in run_sql(con, "jobs/status_held.sql").fetchall()
                if (workspace.home / path).exists()]
        failed_pulls = run_sql(con, "jobs/status_lens_pulls.sql").fetchall()
        suspect = run_sql(con, "jobs/status_suspect.sql").fetchall()
        unsent = run_sql(con, "jobs/status_mail.sql").fetchall()
        waiting = run_sql(con, "jobs/status_waiting.sql").fetchall()
        corrections = run_sql(con, "jobs/status_corrections.sql").fetchall()
        by_modification = [(month, customer_id, name) for month, customer_id, name
                           in run_sql(con, "jobs/status_inventory_uploads.sql").fetchall()
                           if month_in_name(name) is None]
    lines.append(f"Customers ({len(config.contracts.customers)}):")
    today = Month.of(datetime.now(UTC).date())
    for customer in config.contracts.customers:
        data = _month_ranges(months.get(customer.id, [])) or "no inventory yet"
        shown = customer.in_effect(today) or customer.latest
        number, count = shown.term_position
        terms = f" (term {number} of {count})" if count > 1 else ""
        lines.append(f"  {customer.id:<24} {shown.term.start}..{shown.term.end}{terms}  "
                     f"{', '.join(map(WORDS.category, shown.categories))}  data: {data}")
    alerts = [alert for alert in alerts if _open(config, *alert[:2], alert[3])]
    lines.append(f"Open alerts ({len(alerts)}):" if alerts else "Open alerts: none")
    lines += [f"  {_alert(*alert)}"
              + (" (preview: the month is in progress)" if Month.parse(alert[0]) == today
                 else "")
              for alert in alerts]
    if waiting:
        lines.append("Waiting for approval (" + english(
            "%(num)s message", "%(num)s messages", sum(n for *_, n in waiting))
            + ": `review --month`, then `approve --month`):")
        lines += [f"  {month} {customer_id or 'partner'}: "
                  + english("%(num)s message", "%(num)s messages", n)
                  for month, customer_id, n in waiting]
    renewals = [c for c in config.contracts.in_effect(today)
                if months_to_renewal(c, today) is not None]
    if renewals:
        lines.append(f"Renewals due ({len(renewals)}):")
        lines += [f"  {c.id}: the term ends {c.term.end}" for c in renewals]
    if corrections:
        lines.append(f"Corrections sent ({len(corrections)}):")
        lines += [f"  {month} {customer_id} {subject}"
                  for month, customer_id, subject in corrections[:STATUS_LIST_LIMIT]]
    if suspect:
        lines.append(f"Suspect snapshots ({len(suspect)}):")
        lines += [f"  {month} {customer_id} {source}: {message}"
                  for month, customer_id, source, message in suspect]
    if failed_pulls:
        lines.append(f"Failed Lens API pulls ({len(failed_pulls)}):")
        lines += [f"  {month} {customer_id} (tenant {tenant}): {error}"
                  for month, customer_id, tenant, error in failed_pulls]
    if unsent:
        lines.append(f"E-mails not delivered ({len(unsent)}):")
        lines += [f"  {status} {month} {kind} {customer_id}: {subject}" + (f" ({answer})"
                                                                         if answer else "")
                  for status, month, kind, customer_id, subject, answer in unsent]
    if by_modification:
        lines.append(f"Taken for the month they were last changed ({len(by_modification)}: "
                     f"the name holds no month; put one in the name to choose another, "
                     f"{MONTH_FORMS}):")
        lines += [f"  {month} {customer_id} {visible(name)}"
                  for month, customer_id, name in by_modification[:STATUS_LIST_LIMIT]]
        if len(by_modification) > STATUS_LIST_LIMIT:
            lines.append(english("  … and %(num)s older one", "  … and %(num)s older ones",
                                 len(by_modification) - STATUS_LIST_LIMIT))
    if held:
        lines.append(f"Held files waiting ({len(held)}: taken in once renamed as the reason "
                     f"says, or approved with `approve --file`):")
        lines += [f"  {visible(path)}: {visible(reason)}" for path, reason in held]
    lines.append(f"Quarantined files ({len(quarantined)}):" if quarantined
                 else "Quarantined files: none")
    lines += [f"  {visible(path)}: {visible(reason)}" for path, reason in quarantined]
    return "\n".join(lines)
