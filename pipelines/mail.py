"""E-mail: the monthly report to each CSM, and alerts to the partner — exactly once.

Every message is composed from one customer's data only, keyed in the warehouse's ledger by
(kind, customer, month, content) and queued; delivery then sends what is queued, through SMTP
when partner.yaml has `smtp`, else as `.eml` files in outbox/. A re-run finds the keys already
sent and sends nothing twice; `--resend` queues the month's messages again on purpose. A message
that cannot go out (server down, 4xx) stays queued for the next run; a 5xx rejection is
recorded with the server's answer and shown by `status`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path

from pipelines.config import Config, Customer
from pipelines.intake import IntakeResult, shown_path
from pipelines.months import Month, month_in_name
from pipelines.reconcile import NO_DATA, TRUE_UP, MonthResult
from pipelines.result_files import TEMPLATES, write_bytes_atomically
from pipelines.warehouse import fetch_value, open_warehouse, run_sql, transaction

log = logging.getLogger("polyrecon")


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
    """A report or alert of the month already sent (sql/mail_sent_for_month.sql)."""
    key: str
    kind: str
    customer_id: str | None
    topic: str | None
    subject: str
    recipients: str
    sent_at: datetime


@dataclass(frozen=True)
class MailOutcome:
    queued: int  # newly composed this run
    sent: int
    still_queued: int
    rejected: int


def _contacts(config: Config, customer: Customer | None) -> list[str]:
    contacts = list(customer.partner_contacts) if customer else []
    fallback = config.partner.partner.contact_email
    return contacts or ([fallback] if fallback else [])


def compose(config: Config, result: MonthResult, rejected: list[IntakeResult] = (),
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
    for customer in config.contracts.customers:
        rows = [r for r in result.rows if r.customer_id == customer.id]
        if not rows:
            continue
        rma = next((r for r in result.rma if r.customer_id == customer.id), None)
        contacts = _contacts(config, customer)
        table = [[r.category, r.status, r.devices_counted or "-", r.ordered_devices or "-",
                  r.baseline or "-", r.growth_pct or "-"] for r in rows]
        pdf = folder / f"{customer.id}.pdf"
        report = Draft(
            "report", customer.id,
            f"[{partner}] Poly+ Enterprise report {month}: {customer.name}",
            [customer.csm.email], f"Monthly report {month}: {customer.name}",
            [f"Hello {customer.csm.name},",
             f"attached is the Poly+ Enterprise report of {customer.name} for {month}."
             + (f" Headset RMA rate {rma.rma_rate_pct} % ({rma.status})." if rma else "")],
            repr((rows, rma)), cc=contacts,
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
                [f"{row.devices_counted} {row.category} devices counted in {month} against "
                 f"{row.ordered_devices} ordered: growth {row.growth_pct} % reached the "
                 f"trigger.",
                 f"{row.true_up_devices} devices to add, prorated amount {row.prorated_amount} "
                 f"{row.currency}. New ordered devices {row.new_ordered_devices}, new baseline "
                 f"{row.new_baseline} from the month after {month}."], repr(row),
                topic=row.category))
        if rma and rma.status != "OK":
            drafts.append(Draft(
                "rma", customer.id,
                f"[{partner}] RMA {rma.status} {customer.name} {rma.year}: "
                f"{rma.rma_rate_pct} % headset RMAs",
                [customer.csm.email, *contacts], f"Headset RMA rate {rma.status}: {customer.name}",
                [f"{rma.headset_rmas} headset RMAs in {rma.year} up to {month} against "
                 f"{rma.headset_base} ordered headsets: {rma.rma_rate_pct} % (threshold "
                 f"{config.policy.rma_threshold_pct} %). Above it, Poly may bill replacements "
                 f"at list price."], repr(rma), topic="rma"))
        missing = [r.category for r in rows if r.status == NO_DATA]
        if missing and contacts:
            drafts.append(Draft(
                "missing_inventory", customer.id,
                f"[{partner}] Missing Lens inventory {customer.name} {month}",
                contacts, f"Missing inventory: {customer.name}, {month}",
                [f"There is no Poly Lens inventory for {customer.name} for {month} "
                 f"({', '.join(missing)}). Please export the device list from Poly Lens and "
                 f"put it into inbox/{customer.id}/ (footnote 6: the partner owes the monthly "
                 f"inventory report).", *uploads.get(customer.id, [])],
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


def _updated(report: Draft, month: Month, sent: list[SentMessage]) -> Draft:
    """A report sent before with other figures goes out again saying so in its subject."""
    before = {m.key for m in sent if m.kind == "report" and m.customer_id == report.customer_id}
    if not before or ledger_key(report, month) in before:
        return report
    return replace(report, subject=f"{report.subject} (updated: the figures changed)")


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
             f"{month} was reconciled again (a corrected inventory or catalog) and that no "
             f"longer holds. Now: {now}",
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
    values = dict(m=draft, partner=config.partner.partner)
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


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def quarantined_uploads(con) -> list[IntakeResult]:
    """The quarantined uploads as the run that took them reported them."""
    return [IntakeResult(shown_path(customer_id, name), customer_id, "quarantined",
                         f"{reason} (kept as {stored_path})")
            for customer_id, name, reason, stored_path
            in run_sql(con, "mail_rejected_files.sql").fetchall()]


def missing_inventory_uploads(con, month: Month) -> dict[str, list[str]]:
    """Per customer, why an upload did not become `month`'s inventory: it was rejected, or
    its name held no month and it was taken for a later one."""
    from pipelines.intake import month_by_modification

    notes: dict[str, list[str]] = {}
    for customer_id, name, outcome, taken_for, reason, stored_path in run_sql(
            con, "mail_missing_inventory_uploads.sql", month=str(month),
            until=str(month.plus(2))).fetchall():
        shown = shown_path(customer_id, name)
        named = month_in_name(name) is not None
        if outcome == "quarantined" and (taken_for == str(month) or not named):
            notes.setdefault(customer_id, []).append(
                f"The upload {shown} for {taken_for} was rejected: {reason} (kept as "
                f"{stored_path}).")
        elif outcome == "loaded" and not named:
            notes.setdefault(customer_id, []).append(
                f"The upload {shown} counts for {taken_for}, not {month}: "
                f"{month_by_modification(taken_for)}.")
    return notes


def send_month(config: Config, result: MonthResult, resend: bool = False,
               kinds: set[str] | None = None, login: tuple[str, str] | None = None,
               customer_id: str | None = None) -> MailOutcome:
    """Queue the month's messages that were never sent (all of them with `resend`; only
    `kinds`, or only one customer's, when given) and the notice of every quarantined upload
    not yet noticed, then deliver everything queued, this month's and earlier runs' alike."""
    queued = 0
    with open_warehouse(config.workspace) as con:
        sent = [SentMessage(*row) for row in run_sql(
            con, "mail_sent_for_month.sql", month=str(result.month)).fetchall()]
        drafts = [d for d in compose(config, result, quarantined_uploads(con),
                                     missing_inventory_uploads(con, result.month), sent)
                  if (kinds is None or d.kind in kinds)
                  and customer_id in (None, d.customer_id)]
        for draft in drafts:
            key = ledger_key(draft, result.month)
            if not resend and fetch_value(con, "mail_find.sql", message_key=key) is not None:
                continue
            message = build_message(config, draft)
            with transaction(con):
                run_sql(con, "mail_queue.sql", message_key=key, kind=draft.kind,
                        customer_id=draft.customer_id, month=str(result.month),
                        subject=draft.subject, recipients=", ".join(draft.to + draft.cc),
                        queued_at=_now(), message=message.as_bytes(), topic=draft.topic)
            queued += 1
        return _deliver(config, con, queued, login)


def send_notice(config: Config, kind: str, subject: str, to: list[str], paragraphs: list[str],
                key: str, login: tuple[str, str] | None = None, month: str | None = None
                ) -> None:
    """An operational notice (a failed Airflow task) by the same way as every message — SMTP
    when configured, else `outbox/<month>/<kind>-partner-<key>.eml` — but without the ledger:
    it must go out when the warehouse is what failed. Never raises: it is the last word."""
    month = month or str(Month.of(_now().date()))
    draft = Draft(kind, None, subject, to, subject, paragraphs, key)
    try:
        raw = build_message(config, draft).as_bytes()
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        if config.partner.smtp is None:
            write_bytes_atomically(config.workspace.outbox / month /
                                   f"{kind}-partner-{digest}.eml", raw)
            return
        from email import message_from_bytes, policy

        with _connect(config, login) as server:
            server.send_message(message_from_bytes(raw, policy=policy.default))
    except (OSError, smtplib.SMTPException) as error:
        log.error("E-mail: the %s notice could not go out (%s: %s)", kind,
                  type(error).__name__, error)


def _deliver(config: Config, con, queued: int, login: tuple[str, str] | None
             ) -> MailOutcome:
    from email import message_from_bytes, policy

    waiting = run_sql(con, "mail_queued.sql").fetchall()
    outcomes = {"sent": 0, "queued": 0, "rejected": 0}

    def record(key: str, status: str, answer: str | None) -> None:
        with transaction(con):
            run_sql(con, "mail_outcome.sql", message_key=key, status=status, answer=answer,
                    now=_now())
        outcomes[status] += 1

    if not waiting:
        return MailOutcome(queued, 0, 0, 0)
    if config.partner.smtp is None:
        for key, kind, customer_id, month, raw in waiting:
            path = config.workspace.outbox / month / f"{kind}-{customer_id or 'partner'}-{key[:12]}.eml"
            write_bytes_atomically(path, raw)
            record(key, "sent", f"written to {config.workspace.relative(path)}")
        return MailOutcome(queued, outcomes["sent"], 0, 0)
    try:
        server = _connect(config, login)
    except (OSError, smtplib.SMTPException) as error:
        answer = f"could not reach {config.partner.smtp.host}:{config.partner.smtp.port}: " \
                 f"{type(error).__name__}"
        log.warning("E-mail: %s; %d messages stay queued for the next run", answer,
                    len(waiting))
        for key, *_ in waiting:
            record(key, "queued", answer)
        return MailOutcome(queued, 0, len(waiting), 0)
    with server:
        for key, *_, raw in waiting:
            message = message_from_bytes(raw, policy=policy.default)
            try:
                refused = server.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                codes = [code for code, _ in error.recipients.values()]
                status = "rejected" if all(code >= 500 for code in codes) else "queued"
                record(key, status, "; ".join(f"{who}: {code} {text.decode(errors='replace')}"
                                              for who, (code, text) in error.recipients.items()))
            except smtplib.SMTPResponseException as error:
                status = "rejected" if error.smtp_code >= 500 else "queued"
                record(key, status, f"{error.smtp_code} "
                                    f"{error.smtp_error.decode(errors='replace')}")
            except (OSError, smtplib.SMTPException) as error:
                record(key, "queued", f"{type(error).__name__}: {error}")
            else:
                record(key, "sent", "; ".join(
                    f"refused {who}: {code} {text.decode(errors='replace')}"
                    for who, (code, text) in refused.items()) or None)
    return MailOutcome(queued, outcomes["sent"], outcomes["queued"], outcomes["rejected"])


def _connect(config: Config, login: tuple[str, str] | None) -> smtplib.SMTP:
    """`login` (an Airflow connection's) wins over SMTP_USER / SMTP_PASSWORD."""
    settings = config.partner.smtp
    context = ssl.create_default_context()
    if settings.port == 465:
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=30,
                                               context=context)
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=30)
        if settings.starttls:
            server.starttls(context=context)
    user, password = login or (os.environ.get("SMTP_USER"), os.environ.get("SMTP_PASSWORD"))
    if user and password:
        server.login(user, password)
    return server
