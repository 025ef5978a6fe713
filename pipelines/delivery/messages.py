"""The messages of a month, composed: the monthly report to each CSM, true-up and RMA alerts,
missing-inventory reminders, corrections of alerts that no longer hold, file-rejected notices,
and the partner's Lens access notices. Every message is built from one customer's data only.

A message's ledger key is what makes "exactly once" possible (mail.py): the hash of its
identity, which is what the message is about — kind, customer, month, topic, the figures it
states, and who receives it — never its wording. Subjects, sentences, number formats, display
names and the reader's language are left out, so a translation fix or a renamed customer sends
nothing again, while a changed figure or a new recipient is a new message. The figures are the
raw values (whole numbers, amounts as exact decimals, category and status keys, ISO months),
written as canonical JSON: the same facts give the same key in any process.

What each kind states: a report, its customer's result rows, RMA rate and proposed next term;
a true-up, its category's counts, growth, devices added, amount and currency, new ordered
devices and baseline; an RMA alert, the rate, its counts, status and threshold; a
missing-inventory reminder, the categories without inventory and the uploads it names; a
correction, the key of the alert it corrects and what holds now; a file-rejected notice, the
upload (where it was put and is kept, its receipt), whatever the month of the run sending it;
a Lens access notice, the problem, its tenant and credential, for the month whose pull it
endangers (so it goes once a month while the problem lasts).
A figure a message does not state (a true-up's end-of-life devices) is not part of it, so a
change to it alone sends nothing. An RMA alert goes when the rate crosses into a status or
moves by a whole RMA since the alert sent for an earlier month of the year; one that would
only repeat that alert is left to the report, which states the rate and says so (issue 30).

Ledgers written before issue 27 hold keys of the wording; rekey.py keeps that formula, only to
re-key them (mail.py).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import cache
from pathlib import Path

from pipelines.core.config import Config, Customer
from pipelines.core.i18n import Formats, Message, jinja_environment
from pipelines.core.months import Month
from pipelines.core.templates import TEMPLATES
from pipelines.core.visible import visible
from pipelines.reconcile import next_term_start
from pipelines.reconciliation.results import (
    NO_DATA,
    TRUE_UP,
    MonthResult,
    RenewalProposal,
    RmaRow,
)
from pipelines.reports.evidence import cut_note
from pipelines.reports.versions import (
    SentMessage,
    changed_figures,
    report_figures,
    report_table,
    report_table_head,
    sent_version,
)


@dataclass(frozen=True)
class RejectedUpload:
    """A quarantined upload as its notice names it."""
    path: str  # where the partner put it: inbox/<customer>/<name>
    customer_id: str | None
    reason: Message
    stored_path: str  # where the file is kept
    receipt: int  # the intake's receipt number: which upload it was

    def detail(self, formats: Formats) -> str:
        """The problem, and where the file is kept."""
        return formats.gettext("%(reason)s (kept as %(path)s)") % {
            "reason": self.reason.shown(formats), "path": visible(self.stored_path)}


@dataclass(frozen=True)
class LensAccessProblem:
    """A problem the tenant check found, as the partner's notice names it (plain values: the
    check is lens_api's, which delivery does not import). `problem`: `not_visible` (a
    customer's credential cannot see its tenant), `not_mapped` (a tenant with devices and no
    customer), `credential` (a credential could not list its tenants; `detail` says why)."""
    problem: str
    customer_id: str | None
    tenant_id: str | None
    credential: str | None  # None: the partner's
    tenant_name: str | None = None
    region: str | None = None
    devices: int | None = None
    detail: str = ""
    customers: tuple[str, ...] = ()  # of a `credential` problem: the customers pulled with it


@dataclass
class Draft:
    kind: str
    customer_id: str | None
    subject: str
    to: list[str]
    heading: str
    paragraphs: list[str]
    stated: dict  # the figures it states, as raw values (no wording): part of its identity
    cc: list[str] = field(default_factory=list)
    table_head: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)
    # a report's table as raw values (keys, plain numbers): the ledger keeps it, to tell what
    # changed in a later version whatever the wording
    figures: list[list] = field(default_factory=list)
    attachment: Path | None = None
    evidence: list[Path] = field(default_factory=list)  # the evidence pack: not its identity
    topic: str | None = None  # what an alert or its correction is about: a category, or "rma"
    language: str = "en"  # of the reader: the customer's, or the partner's for notices
    # the updated report and alerts a correction carries instead of their going out on their own
    carries: list[Draft] = field(default_factory=list)


@dataclass(frozen=True)
class RmaAlerted:
    """The RMA alert last sent to a customer for an earlier month of the year
    (sql/delivery/mail_rma_alerted.sql)."""
    month: Month
    key: str
    recipients: str
    sent_at: datetime
    rma: RmaRow  # the month's stored result: what the alert stated, when its key agrees
    corrected: bool  # a correction went to the customer after it


MAX_EVIDENCE_BYTES = 8 * 1024 * 1024  # the evidence pack attached to a report, at most
KEY_VERSION = 2  # mail_ledger.key_version of the keys ledger_key makes (sql/warehouse/schema.sql)


def identity(draft: Draft, month: Month) -> str:
    """What the message is about, as canonical JSON: kind, customer, month, topic, the figures
    it states, and its recipients (a new CSM gets the message). A file-rejected notice is about
    one quarantined upload, not about the month of the run that happens to send it."""
    return json.dumps({
        "kind": draft.kind, "customer": draft.customer_id,
        "month": None if draft.kind == "file_rejected" else str(month),
        "topic": draft.topic, "stated": draft.stated,
        "recipients": sorted(set(draft.to + draft.cc))},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_raw)


def _raw(value) -> str:
    """A value JSON has no type for, as text that does not depend on how it was written: an
    amount without trailing zeros (`720`, `7.5`), a day or a month in ISO form."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date | Month):
        return str(value)
    raise TypeError(f"a message states a {type(value).__name__}: state it as a number, "
                    f"a decimal, a day or text")


def ledger_key(draft: Draft, month: Month) -> str:
    return hashlib.sha256(identity(draft, month).encode()).hexdigest()


def _contacts(config: Config, customer: Customer | None) -> list[str]:
    contacts = list(customer.partner_contacts) if customer else []
    fallback = config.partner.partner.contact_email
    return contacts or ([fallback] if fallback else [])


def compose(config: Config, result: MonthResult, rejected: list[RejectedUpload] = (),
            uploads: dict[str, list[Message]] | None = None, sent: list[SentMessage] = (),
            key: Callable[[Draft, Month], str] = ledger_key, one_message: bool = True,
            formats: Callable[[str], Formats] = Formats,
            alerted: dict[str, RmaAlerted] | None = None) -> list[Draft]:
    """The month's messages, each built from one customer's rows only, in that customer's
    language, and a notice for each of the `rejected` (quarantined) uploads, in the partner's.
    `uploads` (missing_inventory_uploads) names, per customer, the uploads a missing-inventory
    reminder must mention so it never hides why. Against what was `sent` for the month before:
    a report whose figures changed says so in its subject, and an alert that no longer holds
    gets one correction. `key` is how the ledger knows a message (the re-keying of an older
    ledger composes with the key, the words and the messages that ledger was written with:
    `formats`, `one_message`). An RMA alert that would repeat the one `alerted` for an earlier
    month of the year is left to the report (`_repeated`)."""
    uploads, alerted = uploads or {}, alerted or {}
    threshold = config.policy.rma_threshold_pct
    partner = config.partner.partner.name
    month = result.month
    drafts: list[Draft] = []
    folder = config.workspace.reports_for(month)
    for customer in config.contracts.in_effect(month):
        rows = [r for r in result.rows if r.customer_id == customer.id]
        if not rows:
            continue
        f = formats(config.language_of(customer))
        _ = f.gettext
        rma = next((r for r in result.rma if r.customer_id == customer.id), None)
        proposal = _proposal(result, customer)
        contacts = _contacts(config, customer)
        pdf = folder / f"{customer.id}.pdf"
        evidence, evidence_note = _evidence(folder, customer, f)
        names = {"partner": partner, "month": month, "customer": customer.name}
        alert_to = [customer.csm.email, *contacts]
        repeated = _repeated(alerted.get(customer.id), rma, threshold, alert_to, sent, key)
        report = Draft(
            "report", customer.id,
            _("[%(partner)s] Poly+ Enterprise report %(month)s: %(customer)s") % names,
            [customer.csm.email], _("Monthly report %(month)s: %(customer)s") % names,
            [_("Hello %(csm)s,") % {"csm": customer.csm.name},
             _("attached is the Poly+ Enterprise report of %(customer)s for %(month)s.")
             % {**names, "month": f.month(month)}
             + ((" " + _("Headset RMA rate %(rate)s %% (%(status)s).")
                 % {"rate": f.decimal(rma.rma_rate_pct), "status": f.status(rma.status)})
                if rma else "")
             + ((" " + _("No new alert: the rate is within one RMA of the alert sent on "
                         "%(day)s.") % {"day": f.date(repeated.sent_at.date())})
                if repeated else ""),
             *_renewal_note(proposal, customer, f), *evidence_note],
            {"rows": [vars(r) for r in rows], "rma": vars(rma) if rma else None,
             "renewal": [proposal.start, proposal.end] if proposal else None}, cc=contacts,
            table_head=report_table_head(f),
            table=report_table(rows, f), figures=report_figures(rows),
            attachment=pdf,
            evidence=evidence,
            language=f.language)
        drafts.append(_updated(report, month, sent, f, key))
        for row in rows:
            if row.status != TRUE_UP:
                continue
            stated = {"category": row.category, "counted": row.devices_counted,
                      "ordered": row.ordered_devices, "growth": row.growth_pct,
                      "added": row.true_up_devices, "amount": row.prorated_amount,
                      "currency": row.currency, "new_ordered": row.new_ordered_devices,
                      "new_baseline": row.new_baseline}
            values = {**names, "category": f.category(row.category),
                      "added": f.number(row.true_up_devices),
                      "amount": f.money(row.prorated_amount, row.currency),
                      "counted": f.number(row.devices_counted),
                      "ordered": f.number(row.ordered_devices),
                      "growth": f.decimal(row.growth_pct),
                      "new_ordered": f.number(row.new_ordered_devices),
                      "new_baseline": f.decimal(row.new_baseline)}
            added, counted = row.true_up_devices, row.devices_counted
            drafts.append(Draft(
                "true_up", customer.id,
                f.ngettext("[%(partner)s] True-up %(customer)s %(category)s %(month)s: "
                           "+%(added)s device, %(amount)s",
                           "[%(partner)s] True-up %(customer)s %(category)s %(month)s: "
                           "+%(added)s devices, %(amount)s", added) % values,
                alert_to,
                _("True-up: %(customer)s, %(category)s") % values,
                [f.ngettext("%(counted)s %(category)s device counted in %(month)s against "
                            "%(ordered)s ordered: growth %(growth)s %% reached the trigger.",
                            "%(counted)s %(category)s devices counted in %(month)s against "
                            "%(ordered)s ordered: growth %(growth)s %% reached the trigger.",
                            counted) % {**values, "month": f.month(month)},
                 (f.ngettext("%(added)s device to add, prorated amount %(amount)s. New ordered "
                             "devices %(new_ordered)s, new baseline %(new_baseline)s from the "
                             "next term on, which starts %(start)s.",
                             "%(added)s devices to add, prorated amount %(amount)s. New ordered "
                             "devices %(new_ordered)s, new baseline %(new_baseline)s from the "
                             "next term on, which starts %(start)s.", added)
                  % {**values, "start": f.date(next_term_start(customer))}
                  if month == customer.term.last_month else
                  f.ngettext("%(added)s device to add, prorated amount %(amount)s. New ordered "
                             "devices %(new_ordered)s, new baseline %(new_baseline)s from the "
                             "month after %(month)s.",
                             "%(added)s devices to add, prorated amount %(amount)s. New ordered "
                             "devices %(new_ordered)s, new baseline %(new_baseline)s from the "
                             "month after %(month)s.", added)
                  % {**values, "month": f.month(month)})],
                stated, topic=row.category, language=f.language))
        if rma and rma.status != "OK" and not repeated:
            values = {**names, "status": f.status(rma.status), "year": rma.year,
                      "rate": f.decimal(rma.rma_rate_pct), "rmas": f.number(rma.headset_rmas),
                      "base": f.number(rma.headset_base), "threshold": f.decimal(threshold)}
            drafts.append(Draft(
                "rma", customer.id,
                _("[%(partner)s] RMA %(status)s %(customer)s %(year)s: %(rate)s %% headset "
                  "RMAs") % values,
                alert_to, _("Headset RMA rate %(status)s: %(customer)s") % values,
                [f.ngettext("%(rmas)s headset RMA in %(year)s up to %(month)s against %(base)s "
                            "ordered headsets: %(rate)s %% (threshold %(threshold)s %%). Above "
                            "it, Poly may bill replacements at list price.",
                            "%(rmas)s headset RMAs in %(year)s up to %(month)s against %(base)s "
                            "ordered headsets: %(rate)s %% (threshold %(threshold)s %%). Above "
                            "it, Poly may bill replacements at list price.", rma.headset_rmas)
                 % {**values, "month": f.month(month)}],
                _rma_stated(rma, threshold), topic="rma", language=f.language))
        missing = [r.category for r in rows if r.status == NO_DATA]
        if missing and contacts and not customer.before_onboarding(month):
            notes = uploads.get(customer.id, [])
            drafts.append(Draft(
                "missing_inventory", customer.id,
                _("[%(partner)s] Missing Lens inventory %(customer)s %(month)s") % names,
                contacts, _("Missing inventory: %(customer)s, %(month)s") % names,
                [_("There is no Poly Lens inventory for %(customer)s for %(month)s "
                   "(%(categories)s). Please export the device list from Poly Lens and put it "
                   "into %(folder)s (Poly+ Enterprise datasheet, footnote 6: the partner owes "
                   "the monthly inventory report).")
                 % {**names, "month": f.month(month), "folder": f"inbox/{customer.id}/",
                    "categories": ", ".join(map(f.category, missing))},
                 *(note.shown(f) for note in notes)],
                {"categories": missing, "uploads": list(map(_named, notes))},
                language=f.language))
    drafts += _corrections(config, result, drafts, sent, key, one_message, formats)
    if one_message:
        drafts = _merged(drafts, sent, month, key)
    return drafts + notices(config, rejected, formats)


def notices(config: Config, rejected: list[RejectedUpload],
            formats: Callable[[str], Formats] = Formats) -> list[Draft]:
    """A notice to the partner's staff for each of the `rejected` (quarantined or held)
    uploads, in the partner's language: about the upload, not about a month, so `ingest` sends
    it as soon as the file is taken in and a later run finds it sent. `formats`: the words,
    as compose's."""
    partner = config.partner.partner.name
    f = formats(config.partner.partner.language)
    _ = f.gettext
    drafts: list[Draft] = []
    for item in rejected:
        customer = config.contracts.get(item.customer_id) if item.customer_id else None
        contacts = _contacts(config, customer)
        if not contacts:
            continue
        values = {"partner": partner, "who": customer.name if customer else _("no customer"),
                  "name": Path(item.path).name, "path": item.path, "detail": item.detail(f)}
        drafts.append(Draft(
            "file_rejected", customer.id if customer else None,
            _("[%(partner)s] File rejected for %(who)s: %(name)s") % values, contacts,
            _("File rejected: %(path)s") % values,
            [_("The file %(path)s could not be taken in.") % values,
             _("Problem: %(detail)s") % values,
             _("Correct the file and put it into the customer's inbox folder again.")],
            {"upload": item.path, "kept_as": item.stored_path, "receipt": item.receipt},
            language=f.language))
    return drafts


def lens_access_notices(config: Config, problems: list[LensAccessProblem],
                        month: Month, formats: Callable[[str], Formats] = Formats
                        ) -> list[Draft]:
    """A notice to the partner's staff for each problem of the tenant check, in the partner's
    language, before `month`'s pull: about the problem (its kind, customer or tenant,
    credential), never its wording, so it goes once for the month however often the check
    runs. A customer's problem goes to its partner contacts; a tenant's or a credential's to
    the partner's contact address (else the contacts of the customers on the credential)."""
    partner = config.partner.partner.name
    f = formats(config.partner.partner.language)
    _ = f.gettext
    drafts: list[Draft] = []
    for item in problems:
        customer = config.contracts.get(item.customer_id) if item.customer_id else None
        credential = (_("the partner's Lens credential") if item.credential is None
                      else _("the Lens credential %(name)s") % {"name": item.credential})
        values = {"partner": partner, "month": month, "tenant": visible(item.tenant_id or ""),
                  "credential": credential, "Credential": credential[:1].upper() + credential[1:]}
        if item.problem == "not_visible" and customer is not None:
            values["customer"] = customer.name
            to = _contacts(config, customer)
            subject = _("[%(partner)s] Poly Lens: no access to the tenant of %(customer)s "
                        "(%(month)s)") % values
            heading = _("Poly Lens access: %(customer)s") % values
            paragraphs = [
                _("%(Credential)s cannot see the Poly Lens tenant %(tenant)s of %(customer)s "
                  "(lens_tenant_id in contracts.yaml): the customer has not accepted the "
                  "credential's access request, or has revoked it.") % values,
                _("Until it can, the inventory for %(month)s cannot be pulled from Poly Lens.")
                % {"month": f.month(month)},
                _("Ask the customer's Poly Lens admin to accept the request (Poly Lens: ACCOUNT "
                  "menu > Manage All Accounts > API Credentials), or correct lens_tenant_id. "
                  "`python -m pipelines tenants` shows when the tenant is visible.")]
        elif item.problem == "not_mapped":
            values.update(
                name=visible(item.tenant_name or item.tenant_id or ""),
                region=visible(item.region) if item.region else _("not known"),
                devices=_("devices not known") if item.devices is None else f.ngettext(
                    "%(num)s device", "%(num)s devices", item.devices)
                % {"num": f.number(item.devices)})
            to = _contacts(config, None)
            subject = _("[%(partner)s] Poly Lens tenant without a customer: %(name)s "
                        "(%(month)s)") % values
            heading = _("Poly Lens tenant not mapped: %(name)s") % values
            paragraphs = [
                _("%(Credential)s sees the Poly Lens tenant %(name)s (id %(tenant)s, region "
                  "%(region)s, %(devices)s), but no customer in contracts.yaml has it as its "
                  "lens_tenant_id: its devices are not reconciled.") % values,
                _("If it is a customer's account, add lens_tenant_id: %(tenant)s to that "
                  "customer in contracts.yaml. If it is not (your own account, a trial), "
                  "nothing needs to be done.") % values]
        elif item.problem == "credential":
            on = [c for c in map(config.contracts.get, item.customers) if c]
            values.update(detail=item.detail,
                          customers=", ".join(c.name for c in on) or _("none"))
            to = _contacts(config, None) or list(dict.fromkeys(
                address for c in on for address in c.partner_contacts))
            subject = _("[%(partner)s] Poly Lens: %(credential)s cannot list tenants "
                        "(%(month)s)") % values
            heading = _("Poly Lens credential not usable")
            paragraphs = [
                _("%(Credential)s could not list the Poly Lens tenants: %(detail)s") % values,
                _("Until it can, these customers can be neither checked nor pulled: "
                  "%(customers)s.") % values,
                _("Set the credential or check it in Poly Lens, then run `python -m pipelines "
                  "tenants`.")]
        else:
            continue
        if not to:
            continue
        drafts.append(Draft(
            "lens_access", item.customer_id, subject, to, heading, paragraphs,
            {"problem": item.problem, "tenant": item.tenant_id,
             "credential": item.credential}, topic=item.problem, language=f.language))
    return drafts


def _named(note: Message) -> dict:
    """What an upload note names, without its sentences: the upload, the months, where the
    file is kept (why it was rejected follows from the file)."""
    return {name: value for name, value in note.values if not isinstance(value, Message)}


def _rma_stated(rma: RmaRow, threshold: Decimal) -> dict:
    return {"status": rma.status, "year": rma.year, "rate": rma.rma_rate_pct,
            "rmas": rma.headset_rmas, "base": rma.headset_base, "threshold": threshold}


def _repeated(before: RmaAlerted | None, rma: RmaRow | None, threshold: Decimal,
              to: list[str], sent: list[SentMessage], key: Callable[[Draft, Month], str]
              ) -> RmaAlerted | None:
    """The earlier alert the month's RMA alert would only repeat, if so: the rate has neither
    crossed (the same status) nor moved by a whole RMA since that alert, which states what its
    month still says (its key) and went to the same people, and nothing corrected it since.
    A month whose own alert was sent already keeps it (a re-run compares with that)."""
    if before is None or before.corrected or rma is None or rma.status == "OK":
        return None
    if any(m.kind == "rma" and m.customer_id == rma.customer_id for m in sent):
        return None
    was = before.rma
    recipients = before.recipients.split(", ")
    if (set(recipients) != set(to) or was.status != rma.status
            or key(Draft("rma", rma.customer_id, "", recipients, "", [],
                         _rma_stated(was, threshold), topic="rma"), before.month) != before.key):
        return None
    # |rmas/base − rmas₀/base₀| × base < 1 RMA, in whole numbers
    moved = abs(rma.headset_rmas * was.headset_base - was.headset_rmas * rma.headset_base)
    return before if moved < was.headset_base else None


def _proposal(result: MonthResult, customer: Customer) -> RenewalProposal | None:
    """The next term the report proposes: in the term's last month, unless it is agreed."""
    proposal = next((p for p in result.renewals if p.customer.id == customer.id), None)
    if proposal is None or customer.has_term_after(result.month):
        return None
    return proposal


def _renewal_note(proposal: RenewalProposal | None, customer: Customer, f: Formats
                  ) -> list[str]:
    if proposal is None:
        return []
    return [f.gettext("The term ends this month: the report proposes the next term, %(start)s "
                      "to %(end)s. Once it is agreed, it is applied with one command: "
                      "python -m pipelines renew --customer %(id)s")
            % {"start": f.date(proposal.start), "end": f.date(proposal.end), "id": customer.id}]


def _updated(report: Draft, month: Month, sent: list[SentMessage], f: Formats,
             key: Callable[[Draft, Month], str]) -> Draft:
    """A report sent before with other figures goes out again saying so in its subject, and
    listing what changed since the last one sent."""
    before = [m for m in sent if m.kind == "report" and m.customer_id == report.customer_id]
    if not before or key(report, month) in {m.key for m in before}:
        return report
    last = sent_version(sent, report.customer_id) or before[-1]
    changes = (changed_figures(json.loads(last.figures), {"rows": report.figures}, f)
               if last.figures else [])
    note = ([f.gettext("Updated: what changed since the report sent on %(day)s:")
             % {"day": f.date(last.sent_at.date())}, *changes] if changes else [])
    return replace(report, subject=report.subject + " "
                   + f.gettext("(updated: the figures changed)"),
                   paragraphs=[*report.paragraphs, *note])


def _corrections(config: Config, result: MonthResult, drafts: list[Draft],
                 sent: list[SentMessage], key: Callable[[Draft, Month], str],
                 one_message: bool, formats: Callable[[str], Formats]) -> list[Draft]:
    """One correction for the latest alert sent on each topic (a true-up's category, the RMA
    rate) that the month, reconciled again, no longer says: to the same recipients, naming
    what was sent and what holds now. About that alert and what holds now: once per change."""
    month, partner = result.month, config.partner.partner.name
    current = {key(d, month) for d in drafts}
    latest: dict[tuple, SentMessage] = {}
    for message in sent:
        if message.kind in ("true_up", "rma") and message.topic:
            latest[(message.kind, message.customer_id, message.topic)] = message
    corrections = []
    for (_kind, customer_id, topic), alert in sorted(latest.items()):
        customer = config.contracts.get(customer_id)
        if alert.key in current or customer is None:
            continue
        f = formats(config.language_of(customer))
        holds = holds_now(result, customer_id, topic)
        now = what_holds(topic, holds, f)
        # The alert's subject names the partner already: the correction's names it once.
        subject = alert.subject.removeprefix(f"[{partner}] ") if one_message else alert.subject
        values = {"partner": partner, "subject": subject,
                  "customer": customer.name,
                  "month": month, "day": f.date(alert.sent_at.date()), "now": now}
        corrections.append(Draft(
            "correction", customer_id, f.gettext("[%(partner)s] Correction: %(subject)s") % values,
            alert.recipients.split(", "),
            f.gettext("Correction: %(customer)s, %(month)s") % values,
            [f.gettext("On %(day)s you received: “%(subject)s”.") % values,
             f.gettext("%(month)s was reconciled again (a corrected inventory or catalog) and "
                       "that no longer holds. Now: %(now)s") % {**values,
                                                                 "month": f.month(month)},
             f.gettext("This message replaces the alert above.")],
            {"corrects": alert.key, "now": holds}, topic=topic, language=f.language))
    return corrections


def _merged(drafts: list[Draft], sent: list[SentMessage], month: Month,
            key: Callable[[Draft, Month], str]) -> list[Draft]:
    """One message per change: a customer's report sent before with other figures and the
    corrections of its alerts become one correction, carrying the updated report, its change
    list and the PDF; an alert on a topic that gets a correction goes out only inside it. A
    month whose updated report was sent apart (ledgers before issue 30) composes no updated
    report, so its corrections keep their own identity and nothing is sent again. The
    corrections it carries are kept carried too: composed again on their own by a later run
    (the updated report is sent by then), they are known as sent."""
    sent_keys = {m.key for m in sent if m.kind == "report"}
    kept, merged = [], []
    for customer_id in dict.fromkeys(d.customer_id for d in drafts):
        own = [d for d in drafts if d.customer_id == customer_id]
        corrections = [d for d in own if d.kind == "correction"]
        report = next((d for d in own if d.kind == "report"), None)
        updated = (report is not None and any(m.customer_id == customer_id for m in sent
                                              if m.kind == "report")
                   and key(report, month) not in sent_keys)
        if not corrections or not updated:
            kept += own
            continue
        corrected = {d.topic for d in corrections}
        superseded = [d for d in own if d.kind in ("true_up", "rma") and d.topic in corrected]
        kept += [d for d in own if d.kind not in ("report", "correction")
                 and d not in superseded]
        first = corrections[0]
        merged.append(replace(
            report, kind="correction", subject=first.subject, heading=first.heading,
            paragraphs=[*report.paragraphs[:1],
                        *(p for d in corrections for p in d.paragraphs[:-1]),
                        *report.paragraphs[1:],
                        Formats(report.language).gettext(
                            "This message replaces the alert and the report sent before: "
                            "the updated report is attached.")],
            stated={"corrects": [d.stated for d in corrections], "report": report.stated},
            to=list(dict.fromkeys([*report.to, *(r for d in corrections for r in d.to
                                                 if r not in report.cc)])),
            topic=None, carries=[report, *superseded, *corrections]))
    return kept + merged


def holds_now(result: MonthResult, customer_id: str, topic: str) -> dict | None:
    """What the month says now on an alert's topic, as a correction states it (None: no
    result on it)."""
    if topic == "rma":
        rma = next((r for r in result.rma if r.customer_id == customer_id), None)
        return None if rma is None else {"rate": rma.rma_rate_pct, "rmas": rma.headset_rmas,
                                         "base": rma.headset_base, "status": rma.status}
    row = next((r for r in result.rows if r.customer_id == customer_id
                and r.category == topic), None)
    if row is None:
        return None
    if row.status == TRUE_UP:
        return {"status": row.status, "added": row.true_up_devices,
                "amount": row.prorated_amount, "currency": row.currency,
                "counted": row.devices_counted, "ordered": row.ordered_devices}
    if row.status == NO_DATA:
        return {"status": row.status}
    return {"status": row.status, "counted": row.devices_counted,
            "ordered": row.ordered_devices, "growth": row.growth_pct}


def what_holds(topic: str, holds: dict | None, f: Formats) -> str:
    """`holds_now`'s facts as the correction says them."""
    _ = f.gettext
    if topic == "rma":
        if holds is None:
            return _("no headset RMA rate is reported for the month.")
        return f.ngettext("headset RMA rate %(rate)s %% (%(rmas)s RMA against %(base)s "
                          "headsets): %(status)s.",
                          "headset RMA rate %(rate)s %% (%(rmas)s RMAs against %(base)s "
                          "headsets): %(status)s.", holds["rmas"]) % {
            "rate": f.decimal(holds["rate"]), "rmas": f.number(holds["rmas"]),
            "base": f.number(holds["base"]), "status": f.status(holds["status"])}
    values = {"category": f.category(topic)}
    if holds is None:
        return _("no %(category)s result for the month.") % values
    if holds["status"] == NO_DATA:
        return _("%(category)s: no inventory for the month, so no true-up is due now.") % values
    values.update(status=f.status(holds["status"]), counted=f.number(holds["counted"]),
                  ordered=f.number(holds["ordered"]))
    if holds["status"] == TRUE_UP:
        return f.ngettext("%(category)s true-up +%(added)s device, prorated amount %(amount)s "
                          "(%(counted)s counted against %(ordered)s ordered).",
                          "%(category)s true-up +%(added)s devices, prorated amount %(amount)s "
                          "(%(counted)s counted against %(ordered)s ordered).",
                          holds["added"]) % {
            **values, "added": f.number(holds["added"]),
            "amount": f.money(holds["amount"], holds["currency"])}
    return f.ngettext("%(category)s %(status)s: %(counted)s device counted against %(ordered)s "
                      "ordered (growth %(growth)s %%); no true-up is due.",
                      "%(category)s %(status)s: %(counted)s devices counted against %(ordered)s "
                      "ordered (growth %(growth)s %%); no true-up is due.",
                      holds["counted"]) % {
        **values, "growth": f.decimal(holds["growth"])}


@cache
def _templates(language: str):
    """The plain-text and HTML templates of a language, compiled once (text unescaped, HTML
    escaped)."""
    from jinja2 import FileSystemLoader, StrictUndefined

    loader = FileSystemLoader(TEMPLATES / "mail")
    return tuple(jinja_environment(loader, Formats(language), undefined=StrictUndefined,
                                   autoescape=escape).get_template(name)
                 for name, escape in (("message.txt.j2", False), ("message.html.j2", True)))


def build_message(config: Config, draft: Draft) -> EmailMessage:
    values = {"m": draft, "partner": config.partner.partner}
    text_template, html_template = _templates(draft.language)
    text, html = text_template.render(values), html_template.render(values)
    message = EmailMessage()
    message["Subject"] = visible(draft.subject)  # a line break would end the header
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
    for path in draft.evidence:
        kind = ("text", "csv") if path.suffix == ".csv" else (
            "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        message.add_attachment(path.read_bytes(), maintype=kind[0], subtype=kind[1],
                               filename=path.name)
    return message


def _evidence(folder: Path, customer, f: Formats) -> tuple[list[Path], list[str]]:
    """The evidence pack to attach (none when the CSM reads the customer's Poly Lens), at
    most MAX_EVIDENCE_BYTES, and what the text says of it: a cut list, a file left behind."""
    if customer.csm_has_lens_access:
        return [], []
    table = folder / f"{customer.id}-devices.csv"
    paths = [p for p in (folder / f"{customer.id}-devices.xlsx", table) if p.exists()]
    cut = cut_note(table, f.language) if table.exists() else None
    notes = [cut] if cut else []
    attached, size = [], 0
    for path in paths:
        size += path.stat().st_size
        if size > MAX_EVIDENCE_BYTES:
            notes.append(f.gettext("%(file)s is larger than the mail allows and is not "
                                   "attached: it is in the month's report folder.")
                         % {"file": path.name})
        else:
            attached.append(path)
    return attached, notes


def _sender(config: Config) -> str:
    if config.partner.smtp:
        return config.partner.smtp.sender
    return config.partner.partner.contact_email or "polyrecon@localhost"
