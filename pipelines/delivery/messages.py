"""The messages of a month, composed: the monthly report to each CSM, true-up and RMA alerts,
missing-inventory reminders, corrections of alerts that no longer hold, and file-rejected
notices. Every message is built from one customer's data only, and its ledger key (kind,
customer, month, content) is what makes "exactly once" possible (mail.py)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path

from pipelines.core.config import Config, Customer
from pipelines.core.months import Month
from pipelines.core.templates import TEMPLATES
from pipelines.reconcile import (
    NO_DATA,
    TRUE_UP,
    MonthResult,
    ReconciliationRow,
    RmaRow,
    as_written,
)


@dataclass(frozen=True)
class RejectedUpload:
    """A quarantined upload as its notice names it."""
    path: str  # where the partner put it: inbox/<customer>/<name>
    customer_id: str | None
    detail: str  # the problem, and where the file is kept


@dataclass
class Draft:
    kind: str
    customer_id: str | None
    subject: str
    to: list[str]
    heading: str
    paragraphs: list[str]
    content: str  # what makes the message what it is: the ledger key hashes it
    cc: list[str] = field(default_factory=list)
    table_head: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)
    attachment: Path | None = None
    topic: str | None = None  # what an alert is about: a true-up's category, or "rma"


@dataclass(frozen=True)
class SentMessage:
    """A report or alert of the month already sent (sql/delivery/mail_sent_for_month.sql)."""
    key: str
    kind: str
    customer_id: str | None
    topic: str | None
    subject: str
    recipients: str
    sent_at: datetime
    figures: str | None  # a report's table as JSON (none for messages queued before)


def _contacts(config: Config, customer: Customer | None) -> list[str]:
    contacts = list(customer.partner_contacts) if customer else []
    fallback = config.partner.partner.contact_email
    return contacts or ([fallback] if fallback else [])


def compose(config: Config, result: MonthResult, rejected: list[RejectedUpload] = (),
            uploads: dict[str, list[str]] | None = None, sent: list[SentMessage] = ()
            ) -> list[Draft]:
    """The month's messages, each built from one customer's rows only, and a notice for each
    of the `rejected` (quarantined) uploads. `uploads` (missing_inventory_uploads) names, per
    customer, the uploads a missing-inventory reminder must mention so it never hides why.
    Against what was `sent` for the month before: a report whose figures changed says so in its
    subject, and an alert that no longer holds gets one correction."""
    uploads = uploads or {}
    partner = config.partner.partner.name
    month = result.month
    drafts: list[Draft] = []
    folder = config.workspace.reports_for(month)
    for customer in config.contracts.in_effect(month):
        rows = [r for r in result.rows if r.customer_id == customer.id]
        if not rows:
            continue
        rma = next((r for r in result.rma if r.customer_id == customer.id), None)
        contacts = _contacts(config, customer)
        table = [[r.category, r.status, *(("-" if value is None else str(value)) for value in (
            r.devices_counted, r.ordered_devices, r.baseline, r.growth_pct))] for r in rows]
        pdf = folder / f"{customer.id}.pdf"
        report = Draft(
            "report", customer.id,
            f"[{partner}] Poly+ Enterprise report {month}: {customer.name}",
            [customer.csm.email], f"Monthly report {month}: {customer.name}",
            [f"Hello {customer.csm.name},",
             f"attached is the Poly+ Enterprise report of {customer.name} for {month}."
             + (f" Headset RMA rate {rma.rma_rate_pct} % ({rma.status})." if rma else ""),
             *_renewal_note(result, customer)],
            f"([{', '.join(map(_keyed, rows))}], {_keyed(rma) if rma else None})", cc=contacts,
            table_head=["Category", "Status", "Counted", "Ordered", "Baseline", "Growth %"],
            table=table, attachment=pdf if pdf.exists() else None)
        drafts.append(_updated(report, month, sent))
        for row in rows:
            if row.status != TRUE_UP:
                continue
            drafts.append(Draft(
                "true_up", customer.id,
                f"[{partner}] True-up {customer.name} {row.category} {month}: "
                f"+{row.true_up_devices} devices, {row.prorated_amount} {row.currency}",
                [customer.csm.email, *contacts], f"True-up: {customer.name}, {row.category}",
                [(f"{row.devices_counted} {row.category} devices counted in {month} against "
                 f"{row.ordered_devices} ordered: growth {row.growth_pct} % reached the "
                 f"trigger."),
                 (f"{row.true_up_devices} devices to add, prorated amount {row.prorated_amount} "
                 f"{row.currency}. New ordered devices {row.new_ordered_devices}, new baseline "
                 f"{row.new_baseline} from the month after {month}.")], _keyed(row),
                topic=row.category))
        if rma and rma.status != "OK":
            drafts.append(Draft(
                "rma", customer.id,
                f"[{partner}] RMA {rma.status} {customer.name} {rma.year}: "
                f"{rma.rma_rate_pct} % headset RMAs",
                [customer.csm.email, *contacts], f"Headset RMA rate {rma.status}: {customer.name}",
                [(f"{rma.headset_rmas} headset RMAs in {rma.year} up to {month} against "
                 f"{rma.headset_base} ordered headsets: {rma.rma_rate_pct} % (threshold "
                 f"{config.policy.rma_threshold_pct} %). Above it, Poly may bill replacements "
                 f"at list price.")], _keyed(rma), topic="rma"))
        missing = [r.category for r in rows if r.status == NO_DATA]
        if missing and contacts:
            drafts.append(Draft(
                "missing_inventory", customer.id,
                f"[{partner}] Missing Lens inventory {customer.name} {month}",
                contacts, f"Missing inventory: {customer.name}, {month}",
                [(f"There is no Poly Lens inventory for {customer.name} for {month} "
                 f"({', '.join(missing)}). Please export the device list from Poly Lens and "
                 f"put it into inbox/{customer.id}/ (footnote 6: the partner owes the monthly "
                 f"inventory report)."), *uploads.get(customer.id, [])],
                # Keyed as before uploads were named, unless there are some to name.
                repr((missing, uploads[customer.id])) if uploads.get(customer.id)
                else repr(missing)))
    drafts += _corrections(config, result, drafts, sent)
    for item in rejected:
        customer = config.contracts.get(item.customer_id) if item.customer_id else None
        contacts = _contacts(config, customer)
        if not contacts:
            continue
        who = customer.name if customer else "no customer"
        drafts.append(Draft(
            "file_rejected", customer.id if customer else None,
            f"[{partner}] File rejected for {who}: {Path(item.path).name}", contacts,
            f"File rejected: {item.path}",
            [f"The file {item.path} could not be taken in.", f"Problem: {item.detail}",
             "Correct the file and put it into the customer's inbox folder again."],
            repr((item.path, item.detail))))
    return drafts


def _renewal_note(result: MonthResult, customer: Customer) -> list[str]:
    proposal = next((p for p in result.renewals if p.customer.id == customer.id), None)
    if proposal is None or customer.has_term_after(result.month):
        return []
    return [(f"The term ends this month: the report proposes the next term, {proposal.start} to "
            f"{proposal.end}. Once it is agreed, it is applied with one command: "
            f"python -m pipelines renew --customer {customer.id}")]


def _keyed(row: ReconciliationRow | RmaRow) -> str:
    """A row as a ledger key's content takes it: the text rows were keyed by when they held
    their values as written, so a message sent before is still found sent."""
    values = ", ".join(f"{name}={value!r}" for name, value in as_written(row).items())
    return f"{type(row).__name__}({values})"


def _updated(report: Draft, month: Month, sent: list[SentMessage]) -> Draft:
    """A report sent before with other figures goes out again saying so in its subject, and
    listing what changed since the last one sent."""
    before = [m for m in sent if m.kind == "report" and m.customer_id == report.customer_id]
    if not before or ledger_key(report, month) in {m.key for m in before}:
        return report
    last = before[-1]
    changes = _changed_figures(json.loads(last.figures), report) if last.figures else []
    note = ([f"Updated: what changed since the report sent on {last.sent_at:%Y-%m-%d}:",
             *changes] if changes else [])
    return replace(report, subject=f"{report.subject} (updated: the figures changed)",
                   paragraphs=[*report.paragraphs, *note])


def _changed_figures(sent_table: list[list[str]], report: Draft) -> list[str]:
    """One line per category whose figures differ: "video: Status TRUE_UP → OK, …"."""
    sent_rows = {row[0]: row for row in sent_table}
    lines = []
    for row in report.table:
        was = sent_rows.pop(row[0], None)
        if was is None:
            lines.append(f"{row[0]}: new in this report")
            continue
        diffs = [f"{head} {old} → {new}" for head, old, new
                 in zip(report.table_head[1:], was[1:], row[1:]) if old != new]
        if diffs:
            lines.append(f"{row[0]}: {', '.join(diffs)}")
    lines += [f"{category}: no longer in the report" for category in sent_rows]
    return lines


def _corrections(config: Config, result: MonthResult, drafts: list[Draft],
                 sent: list[SentMessage]) -> list[Draft]:
    """One correction for the latest alert sent on each topic (a true-up's category, the RMA
    rate) that the month, reconciled again, no longer says: to the same recipients, naming
    what was sent and what holds now. Keyed by that alert and what holds now: once per change."""
    month, partner = result.month, config.partner.partner.name
    current = {ledger_key(d, month) for d in drafts}
    latest: dict[tuple, SentMessage] = {}
    for message in sent:
        if message.kind in ("true_up", "rma") and message.topic:
            latest[(message.kind, message.customer_id, message.topic)] = message
    corrections = []
    for (kind, customer_id, topic), alert in sorted(latest.items()):
        customer = config.contracts.get(customer_id)
        if alert.key in current or customer is None:
            continue
        now = _what_holds(result, customer_id, topic)
        corrections.append(Draft(
            "correction", customer_id, f"[{partner}] Correction: {alert.subject}",
            alert.recipients.split(", "), f"Correction: {customer.name}, {month}",
            [f"On {alert.sent_at:%Y-%m-%d} you received: “{alert.subject}”.",
             (f"{month} was reconciled again (a corrected inventory or catalog) and that no "
             f"longer holds. Now: {now}"),
             "This message replaces the alert above."],
            repr((alert.key, now))))
    return corrections


def _what_holds(result: MonthResult, customer_id: str, topic: str) -> str:
    if topic == "rma":
        rma = next((r for r in result.rma if r.customer_id == customer_id), None)
        return (f"headset RMA rate {rma.rma_rate_pct} % ({rma.headset_rmas} RMAs against "
                f"{rma.headset_base} headsets): {rma.status}." if rma
                else "no headset RMA rate is reported for the month.")
    row = next((r for r in result.rows if r.customer_id == customer_id
                and r.category == topic), None)
    if row is None:
        return f"no {topic} result for the month."
    if row.status == TRUE_UP:
        return (f"{topic} true-up +{row.true_up_devices} devices, prorated amount "
                f"{row.prorated_amount} {row.currency} ({row.devices_counted} counted against "
                f"{row.ordered_devices} ordered).")
    if row.status == NO_DATA:
        return f"{topic}: no inventory for the month, so no true-up is due now."
    return (f"{topic} {row.status}: {row.devices_counted} devices counted against "
            f"{row.ordered_devices} ordered (growth {row.growth_pct} %); no true-up is due.")


def ledger_key(draft: Draft, month: Month) -> str:
    # A file-rejected notice is about one quarantined file (its content names where it is
    # kept), not about the month of the run that happens to send it.
    about = "" if draft.kind == "file_rejected" else str(month)
    return hashlib.sha256("\x1f".join(
        [draft.kind, draft.customer_id or "", about, draft.subject, draft.content,
         ",".join(draft.to + draft.cc)]).encode()).hexdigest()


@lru_cache(maxsize=1)
def _templates():
    """The plain-text and HTML templates, compiled once (text unescaped, HTML escaped)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    loader = FileSystemLoader(TEMPLATES / "mail")
    return tuple(Environment(loader=loader, undefined=StrictUndefined, autoescape=escape)
                 .get_template(name)
                 for name, escape in (("message.txt.j2", False), ("message.html.j2", True)))


def build_message(config: Config, draft: Draft) -> EmailMessage:
    values = {"m": draft, "partner": config.partner.partner}
    text_template, html_template = _templates()
    text, html = text_template.render(values), html_template.render(values)
    message = EmailMessage()
    message["Subject"] = draft.subject
    message["From"] = _sender(config)
    message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="polyrecon.invalid")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if draft.attachment:
        message.add_attachment(draft.attachment.read_bytes(), maintype="application",
                               subtype="pdf", filename=draft.attachment.name)
    return message


def _sender(config: Config) -> str:
    if config.partner.smtp:
        return config.partner.smtp.sender
    return config.partner.partner.contact_email or "polyrecon@localhost"
