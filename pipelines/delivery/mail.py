"""E-mail: the monthly report to each CSM, and alerts to the partner — exactly once.

Every message is composed from one customer's data only, keyed in the warehouse's ledger by
what it is about, never its wording (messages.py), and queued; delivery then sends what is
queued, through SMTP when partner.yaml has `smtp`, else as `outbox/<month>/<kind>-<customer>-
<key's first 12 digits>.eml`. A re-run finds the keys already sent and sends nothing twice;
`--resend` queues the month's messages again on purpose. A message that cannot go out (server
down, 4xx) stays queued for the next run; a 5xx rejection is recorded with the server's answer
and shown by `status`. On DuckLake, whose ledger has no unique key, each delivery attempt is
claimed in PostgreSQL before the message goes to SMTP (warehouse/lake.py), so no two senders
send one message; one whose sender stopped while handing it over waits for a person
(docs/decisions.md "On DuckLake, an e-mail whose sender stopped while handing it over").

With partner.yaml `delivery: {review: required}` a message to a CSM or a customer (REVIEWED)
waits in the ledger (`waiting`) until `approve` (jobs/review.py) queues it; the partner's own
notices go out at once. A month composed again before approval withdraws each waiting message
it no longer composes (`withdrawn`): only what the month says now can be approved, and a
message composed once more, even one withdrawn before, waits again.

A ledger written before issue 27 holds keys of the wording. The first send after the upgrade
re-keys it before composing anything (`rekey_ledger`), sending nothing; its `.eml` files keep
their names (the ledger's answers name them), so `rebuild` knows a file by either key. The
ledger's other owners are here too: `rebuild` copies it (`copy_ledger`) or, when it is lost,
makes it again from outbox/ (`ledger_from_outbox`).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import smtplib
import socket
import ssl
import threading
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.core.config import Config, lake_settings
from pipelines.core.errors import ConfigError
from pipelines.core.files import write_bytes_atomically
from pipelines.core.i18n import N_, Message
from pipelines.core.months import Month, month_by_modification, month_in_name
from pipelines.core.visible import visible
from pipelines.core.workspace import shown_path
from pipelines.delivery.messages import (
    KEY_VERSION,
    Draft,
    LensAccessProblem,
    RejectedUpload,
    RmaAlerted,
    build_message,
    compose,
    ledger_key,
    lens_access_notices,
    notices,
)
from pipelines.delivery.rekey import recomposed
from pipelines.reconciliation.month import compute_month, stored_month
from pipelines.reconciliation.results import MonthResult, RmaRow
from pipelines.reports.versions import SentMessage, stored_figures
from pipelines.warehouse import lake
from pipelines.warehouse.connection import (
    fetch_value,
    load_frame,
    open_warehouse,
    run_sql,
    transaction,
)

log = logging.getLogger("polyrecon")


# The kinds a CSM or a customer receives: held for review when review is required.
REVIEWED = ("report", "true_up", "rma", "correction")


@dataclass(frozen=True)
class MailOutcome:
    queued: int  # newly composed this run
    sent: int
    still_queued: int
    rejected: int
    # composed this run and waiting for approval (delivery.review: required), or in doubt
    waiting: int = 0
    withdrawn: int = 0  # waiting ones the month no longer composes

    def __add__(self, other: MailOutcome) -> MailOutcome:
        return MailOutcome(*(a + b for a, b in zip(vars(self).values(), vars(other).values(),
                                                     strict=True)))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def quarantined_uploads(con) -> list[RejectedUpload]:
    """The quarantined uploads as the run that took them reported them."""
    return [RejectedUpload(shown_path(customer_id, name), customer_id,
                           Message.stored(reason_message, reason), stored_path, receipt)
            for customer_id, name, reason, reason_message, stored_path, receipt
            in run_sql(con, "delivery/mail_rejected_files.sql").fetchall()]


def missing_inventory_uploads(con, month: Month) -> dict[str, list[Message]]:
    """Per customer, why an upload did not become `month`'s inventory: it was rejected or is
    held, or its name held no month and it was taken for a later one."""
    notes: dict[str, list[Message]] = {}
    for customer_id, name, outcome, taken_for, reason, reason_message, stored_path in run_sql(
            con, "delivery/mail_missing_inventory_uploads.sql", month=str(month),
            until=str(month.plus(2))).fetchall():
        shown = shown_path(customer_id, name)
        named = month_in_name(name) is not None
        if outcome == "quarantined" and (taken_for == str(month) or not named):
            notes.setdefault(customer_id, []).append(Message.of(
                N_("The upload %(upload)s for %(month)s was rejected: %(reason)s (kept as "
                   "%(path)s)."), upload=shown, month=taken_for,
                reason=Message.stored(reason_message, reason), path=visible(stored_path)))
        elif outcome == "held" and (taken_for == str(month) or not named):
            notes.setdefault(customer_id, []).append(Message.of(
                N_("The upload %(upload)s for %(month)s is held: %(reason)s (kept as "
                   "%(path)s)."), upload=shown, month=taken_for,
                reason=Message.stored(reason_message, reason), path=visible(stored_path)))
        elif outcome == "loaded" and not named:
            notes.setdefault(customer_id, []).append(Message.of(
                N_("The upload %(upload)s counts for %(taken_for)s, not %(month)s: %(why)s."),
                upload=shown, taken_for=taken_for, month=str(month),
                why=month_by_modification(taken_for)))
    return notes


def send_month(config: Config, result: MonthResult, resend: bool = False,
               kinds: set[str] | None = None, login: tuple[str, str] | None = None,
               customer_id: str | None = None) -> MailOutcome:
    """Queue the month's messages that were never sent (all of them with `resend`; only
    `kinds`, or only one customer's, when given) and the notice of every quarantined upload
    not yet noticed, then deliver everything queued, this month's and earlier runs' alike."""
    queued = waiting = 0
    review = config.partner.delivery.review == "required"
    with open_warehouse(config.workspace) as con:
        rekey_ledger(config, con)
        drafts = [d for d in compose(config, result, quarantined_uploads(con),
                                     missing_inventory_uploads(con, result.month),
                                     _sent(con, result.month),
                                     alerted=rma_alerted(con, result.month))
                  if (kinds is None or d.kind in kinds)
                  and customer_id in (None, d.customer_id)]
        keys = [ledger_key(draft, result.month) for draft in drafts]
        without_pdf = 0
        for draft, key in zip(drafts, keys, strict=True):
            if not resend and not _unsent(con, key):
                continue
            if not _carries_its_pdf(draft, result.month):
                without_pdf += 1  # composed again, and queued, by a run that renders it
                continue
            held = review and draft.kind in REVIEWED
            with transaction(con):
                _queue(con, draft, result.month, key, build_message(config, draft).as_bytes(),
                       "waiting" if held else "queued")
                for carried in draft.carries:
                    carried_key = ledger_key(carried, result.month)
                    if _unsent(con, carried_key):
                        _queue(con, carried, result.month, carried_key, b"", "carried",
                               carrier=key)
            queued += 1
            waiting += held
        with transaction(con):
            withdrawn = fetch_value(
                con, "delivery/mail_withdraw_waiting.sql", month=str(result.month),
                kinds=[k for k in REVIEWED if kinds is None or k in kinds],
                customer_id=customer_id, keys=keys, now=_now())
        outcome = _deliver(config, con, queued, login)
        return MailOutcome(outcome.queued, outcome.sent, outcome.still_queued + without_pdf,
                           outcome.rejected, waiting + outcome.waiting, withdrawn)


def _carries_its_pdf(draft: Draft, month: Month) -> bool:
    """Whether the report a message says is attached is there, whole. One whose render failed
    (or was made on another machine) is not sent without it: nothing goes into the ledger, so
    the next run that renders it sends it; the partner reads why in the log."""
    path = draft.attachment
    if path is None:
        return True
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    whole = data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if not whole:
        log.error("E-mail: the %s message for %s (%s) is not sent: its report %s is missing or "
                  "cut short; render it again (`python -m pipelines report --month %s "
                  "--customer %s`) and the next run sends it", draft.kind, draft.customer_id,
                  month, path.name, month, draft.customer_id)
    return whole


def send_notices(config: Config, month: Month, login: tuple[str, str] | None = None
                 ) -> MailOutcome:
    """The partner's notice of every quarantined or held upload not yet noticed, without a
    month's result: `ingest` and the upload DAG send them as soon as the files are taken in,
    filed under `month` as the run of that month would file them. A notice is about its
    upload, not a month (messages.identity), so the month's run finds it sent. Delivers
    whatever else is queued too."""
    return _queue_unsent(config, month, login,
                         lambda con: notices(config, quarantined_uploads(con)))


def send_lens_access(config: Config, problems: list[LensAccessProblem], month: Month,
                     login: tuple[str, str] | None = None) -> MailOutcome:
    """The partner's notice of each problem the tenant check found before `month`'s pull, each
    once for the month (the ledger knows it by what it is about); delivers whatever else is
    queued too. Notices to the partner's staff never wait for review."""
    return _queue_unsent(config, month, login,
                         lambda con: lens_access_notices(config, problems, month))


def _queue_unsent(config: Config, month: Month, login: tuple[str, str] | None, drafts
                  ) -> MailOutcome:
    """Queues each of `drafts(con)` the ledger has not sent for `month`, then delivers
    whatever is queued: the partner's notices, which never wait for review."""
    queued = 0
    with open_warehouse(config.workspace) as con:
        rekey_ledger(config, con)
        for draft in drafts(con):
            key = ledger_key(draft, month)
            if not _unsent(con, key):
                continue
            with transaction(con):
                _queue(con, draft, month, key, build_message(config, draft).as_bytes())
            queued += 1
        return _deliver(config, con, queued, login)


def deliver_waiting(config: Config, months: list[Month] | None, customer_id: str | None,
                    login: tuple[str, str] | None = None) -> MailOutcome:
    """The approval: every message waiting for `months` (all months: None), of one customer
    or all, queued and delivered with whatever else is queued. A second approval finds
    nothing waiting and sends nothing."""
    with open_warehouse(config.workspace) as con:
        with transaction(con):
            approved = fetch_value(con, "delivery/mail_approve.sql", customer_id=customer_id,
                                   months=None if months is None else list(map(str, months)),
                                   now=_now())
        return _deliver(config, con, approved, login)


def _sent(con, month: Month) -> list[SentMessage]:
    return [SentMessage(*row) for row in run_sql(
        con, "delivery/mail_sent_for_month.sql", month=str(month)).fetchall()]


def rma_alerted(con, month: Month) -> dict[str, RmaAlerted]:
    """Per customer, the RMA alert last sent for an earlier month of `month`'s year."""
    return {customer_id: RmaAlerted(Month.parse(alert_month), key, recipients, sent_at,
                                    RmaRow(customer_id, *rma), corrected)
            for customer_id, alert_month, key, recipients, sent_at, *rma, corrected
            in run_sql(con, "delivery/mail_rma_alerted.sql", month=str(month),
                       year_start=f"{month.year:04d}-01").fetchall()}


def _unsent(con, key: str) -> bool:
    """Never composed before, or composed and withdrawn (a waiting version replaced): the
    ledger has nothing of it that went, goes or waits."""
    return fetch_value(con, "delivery/mail_find.sql", message_key=key) in (None, "withdrawn")


def _queue(con, draft: Draft, month: Month, key: str, raw: bytes, status: str = "queued",
           carrier: str | None = None) -> None:
    """One ledger line; a `carried` one names in `answer` the correction that carries it, and
    counts as sent, waiting or withdrawn as that correction does."""
    run_sql(con, "delivery/mail_queue.sql", message_key=key, status=status, kind=draft.kind,
            customer_id=draft.customer_id, month=str(month), subject=draft.subject,
            recipients=", ".join(draft.to + draft.cc), queued_at=_now(), message=raw,
            topic=draft.topic, answer=carrier,
            figures=stored_figures(draft.figures) if draft.figures else None,
            key_version=KEY_VERSION)


def rekey_ledger(config: Config, con) -> None:
    """Ledger lines keyed by their wording (written before issue 27, or by such a version
    since) get the key of what they are about, sending nothing. Each month that has such lines
    is composed again from its stored result with what was sent for it, as its last run did,
    and a line that a message composed now matches under the old formula (rekey.py) takes
    that message's key. A line no message matches keeps its key, marked as looked at: it is
    about what the month no longer shows (an earlier reconciliation, or wording since
    changed), and no message composed from now on has that key; should the month come to show
    it again, that is a change, and goes out as one."""
    months = run_sql(con, "delivery/mail_unkeyed_months.sql").fetchall()
    if not months:
        return
    import pandas as pd

    rejected = quarantined_uploads(con)
    keys: dict[str, str] = {}
    for month_text, _lines in months:
        month = Month.parse(month_text)
        result = stored_month(con, config, month) or compute_month(con, config, month)
        for draft, legacy in recomposed(config, result, rejected,
                                        missing_inventory_uploads(con, month), _sent(con, month)):
            keys.setdefault(legacy, ledger_key(draft, month))
    pairs = pd.DataFrame(list(keys.items()), columns=["legacy_key", "message_key"])
    with transaction(con):
        if keys:
            load_frame(con, "delivery/mail_rekey.sql", pairs.drop_duplicates("message_key"),
                       key_version=KEY_VERSION)
        kept = fetch_value(con, "delivery/mail_keep_wording_keys.sql")
    log.info("E-mail ledger: %d messages keyed by what they are about instead of their wording, "
             "%d kept their old key; nothing was sent", sum(n for _, n in months) - kept, kept)


def copy_ledger(con) -> int:
    """The mail ledger of the warehouse attached to `con` as `old` (`rebuild`), copied whole
    with its keys; lines keyed by their wording are re-keyed by the next send. Returns how
    many messages were copied."""
    with transaction(con):
        return fetch_value(con, "delivery/mail_copy_ledger.sql")


def ledger_from_outbox(config: Config, con, results: list[MonthResult]) -> int:
    """A ledger made again when the old one is lost (`rebuild`), sending nothing: each message
    of the months' `results` is entered as sent when its `.eml` file is in outbox/ (named by
    its key, or by its key before issue 27), or, when e-mail goes through SMTP (no outbox shows
    what went out), assumed sent. Returns how many messages were entered."""
    outbox = {p.stem.rsplit("-", 1)[-1]: p for p in config.workspace.outbox.glob("*/*.eml")}
    assumed = config.partner.smtp is not None
    entered = 0
    for result in results:
        uploads = missing_inventory_uploads(con, result.month)
        for draft, legacy in recomposed(config, result, [], uploads, []):
            key = ledger_key(draft, result.month)
            found = outbox.get(key[:12]) or outbox.get(legacy[:12])
            if found is None and not assumed:
                continue
            raw = found.read_bytes() if found else build_message(config, draft).as_bytes()
            answer = "recorded by rebuild: " + (
                f"found {config.workspace.relative(found)}" if found else
                "assumed sent, the old mail ledger was unreadable")
            with transaction(con):
                _queue(con, draft, result.month, key, raw)
                run_sql(con, "delivery/mail_outcome.sql", message_key=key, status="sent",
                        answer=answer, now=_now())
            entered += 1
    return entered


def send_notice(config: Config, kind: str, subject: str, to: list[str], paragraphs: list[str],
                key: str, login: tuple[str, str] | None = None, month: str | None = None
                ) -> None:
    """An operational notice (a failed Airflow task) by the same way as every message — SMTP
    when configured, else `outbox/<month>/<kind>-partner-<key>.eml` — but without the ledger:
    it must go out when the warehouse is what failed. Never raises: it is the last word."""
    month = month or str(Month.of(_now().date()))
    draft = Draft(kind, None, subject, to, subject, paragraphs, {})
    try:
        raw = build_message(config, draft).as_bytes()
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        if config.partner.smtp is None:
            write_bytes_atomically(config.workspace.outbox / month /
                                   f"{kind}-partner-{digest}.eml", raw)
            return
        from email import message_from_bytes, policy

        server = _connect(config, login)
        try:
            with _deadline(server, MESSAGE_DEADLINE, "sending the notice"):
                server.send_message(message_from_bytes(raw, policy=policy.default))
        finally:
            _hang_up(server)
    except (OSError, smtplib.SMTPException) as error:
        log.error("E-mail: the %s notice could not go out (%s: %s)", kind,
                  type(error).__name__, error)


def _deliver(config: Config, con, queued: int, login: tuple[str, str] | None
             ) -> MailOutcome:
    waiting = run_sql(con, "delivery/mail_queued.sql").fetchall()
    outcomes = {"sent": 0, "queued": 0, "rejected": 0, "waiting": 0}

    def record(key: str, status: str, answer: str | None) -> None:
        def once() -> None:
            with transaction(con):
                run_sql(con, "delivery/mail_outcome.sql", message_key=key, status=status,
                        answer=answer, now=_now())
        # On DuckLake another sender's record may land first (never on the embedded file).
        lake.retry_conflicts(once, "recording an e-mail's answer")
        outcomes[status] += 1

    if not waiting:
        return MailOutcome(queued, 0, 0, 0)
    if config.partner.smtp is None:
        for key, kind, customer_id, month, raw, *_ in waiting:
            name = f"{kind}-{customer_id or 'partner'}-{key[:12]}.eml"
            path = config.workspace.outbox / month / name
            write_bytes_atomically(path, raw)
            record(key, "sent", f"written to {config.workspace.relative(path)}")
        return MailOutcome(queued, outcomes["sent"], 0, 0)
    try:
        server = _connect(config, login)
    except (OSError, smtplib.SMTPException) as error:
        answer = f"could not reach {config.partner.smtp.host}:{config.partner.smtp.port}: " \
                 + (str(error) if isinstance(error, DeadlineExceeded) else type(error).__name__)
        log.warning("E-mail: %s; %d messages stay queued for the next run", answer,
                    len(waiting))
        for key, *_ in waiting:
            record(key, "queued", answer)
        return MailOutcome(queued, 0, len(waiting), 0)
    settings = lake_settings(config.workspace)
    try:
        with lake.mail_claims(settings) if settings else nullcontext() as claims:
            for key, kind, customer_id, month, raw, queued_at, attempts in waiting:
                # DuckLake has no unique keys: a message goes to SMTP only once claimed.
                other = claims.claim(key, queued_at, attempts) if claims else None
                if other is not None:
                    if fetch_value(con, "delivery/mail_attempt_open.sql", message_key=key,
                                   queued_at=queued_at, attempts=attempts):
                        _claimed_before(record, other, key, kind, customer_id, month)
                    continue  # else its sender recorded it
                status, answer = _send(server, raw)
                if claims:
                    claims.settle(key, queued_at, attempts, status, answer)
                record(key, status, answer)
    finally:
        _hang_up(server)
    return MailOutcome(queued, outcomes["sent"], outcomes["queued"], outcomes["rejected"],
                       outcomes["waiting"])


def _send(server: smtplib.SMTP, raw: bytes) -> tuple[str, str | None]:
    """One message through SMTP: its ledger status (sent, queued: try again, rejected) and
    the server's answer."""
    from email import message_from_bytes, policy

    message = message_from_bytes(raw, policy=policy.default)
    try:
        with _deadline(server, MESSAGE_DEADLINE, "sending one message"):
            refused = server.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        return ("rejected" if all(code >= 500 for code in codes) else "queued",
                "; ".join(f"{who}: {code} {text.decode(errors='replace')}"
                          for who, (code, text) in error.recipients.items()))
    except smtplib.SMTPResponseException as error:
        return ("rejected" if error.smtp_code >= 500 else "queued",
                f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}")
    except (OSError, smtplib.SMTPException) as error:
        return "queued", f"{type(error).__name__}: {error}"
    return "sent", "; ".join(f"refused {who}: {code} {text.decode(errors='replace')}"
                             for who, (code, text) in refused.items()) or None


def _claimed_before(record, other: lake.Claim, key: str, kind: str, customer_id: str | None,
                    month: str) -> None:
    """A delivery attempt another sender claimed first (DuckLake) and the ledger does not
    record: left to it while its session is open; else its answer copied to the ledger when
    it recorded one beside the claim; else it stopped between handing the message to SMTP
    and recording the answer, and the message may or may not have gone out: it waits for a
    person, who knows by asking its recipients (docs/decisions.md)."""
    about = f"the {kind} message for {customer_id or 'the partner'} ({month})"
    if other.alive:
        log.warning("E-mail: %s is being sent by another process (%s): left to it", about,
                    other.claimed_by)
    elif other.status is not None:
        record(key, other.status, other.answer)
    else:
        approve = f"approve --month {month}" + (f" --customer {customer_id}" if customer_id
                                                 else "")
        record(key, "waiting", f"in doubt: handed to the SMTP server by `{other.claimed_by}`, "
                               f"which stopped before it recorded the answer; if its "
                               f"recipients did not get it, `{approve}` sends it")
        log.warning("E-mail: %s may have gone out: %s handed it to the SMTP server and stopped "
                    "before recording the answer; it waits: if its recipients did not get it, "
                    "`%s` sends it", about, other.claimed_by, approve)


def _hang_up(server: smtplib.SMTP) -> None:
    """QUIT, whatever the server answers: every message is recorded by now, and a server that
    ends the session with another code than 221 (a 421 time-out) has taken them all the same."""
    try:
        server.quit()
    except (OSError, smtplib.SMTPException):
        server.close()


def _check_plaintext_login(host: str) -> None:
    """A password sent without TLS can be read on the way: to a relay on this machine that is
    said, to any other host it is refused."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    if not loopback:
        raise ConfigError(f"partner.yaml: smtp.starttls is false, so the SMTP password would go "
                          f"unencrypted to {host}: set starttls: true (or port: 465)")
    log.warning("SMTP: the password goes unencrypted to %s (starttls: false); this host is "
                "this machine, so it stays here", host)


# smtplib's timeout bounds each read only: a server that answers a byte at a time holds a run
# (and the workspace lock) for ever. These bound the whole of each step.
CONNECT_DEADLINE = 120.0  # seconds: connection, greeting, EHLO, STARTTLS and login
MESSAGE_DEADLINE = 300.0  # seconds: one message, from MAIL FROM to the server's last answer
READ_TIMEOUT = 30.0  # seconds one read may wait


class DeadlineExceeded(smtplib.SMTPServerDisconnected):
    """The server took longer than a deadline: the connection was cut."""


@contextmanager
def _deadline(server: smtplib.SMTP, seconds: float, what: str):
    """Past `seconds`, the connection is shut down from a timer thread, which ends any read
    at once, and `what` fails as DeadlineExceeded."""
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        if server.sock is not None:
            with suppress(OSError):
                server.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    except (OSError, smtplib.SMTPException):
        if fired.is_set():
            raise DeadlineExceeded(f"{what} took longer than {seconds:g} s") from None
        raise
    finally:
        timer.cancel()
    if fired.is_set():
        raise DeadlineExceeded(f"{what} took longer than {seconds:g} s")


def _connect(config: Config, login: tuple[str, str] | None) -> smtplib.SMTP:
    """`login` (an Airflow connection's) wins over SMTP_USER / SMTP_PASSWORD."""
    settings = config.partner.smtp
    user, password = login or (os.environ.get("SMTP_USER"), os.environ.get("SMTP_PASSWORD"))
    encrypted = settings.port == 465 or settings.starttls
    if user and password and not encrypted:
        _check_plaintext_login(settings.host)
    context = ssl.create_default_context()
    server: smtplib.SMTP = (smtplib.SMTP_SSL(timeout=READ_TIMEOUT, context=context)
                            if settings.port == 465 else smtplib.SMTP(timeout=READ_TIMEOUT))
    try:
        with _deadline(server, CONNECT_DEADLINE, "connecting and logging in"):
            server.connect(settings.host, settings.port)
            if settings.port != 465 and settings.starttls:
                server.starttls(context=context)
            if user and password:
                server.login(user, password)
    except BaseException:
        server.close()
        raise
    return server
