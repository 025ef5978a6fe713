"""`review` and `approve --month`: a person signs what goes to a CSM before it goes.

With partner.yaml `delivery: {review: required}`, every run composes, renders and keeps its
messages to CSMs and customers in the e-mail ledger as waiting (delivery/mail.py); nothing of
it leaves until `approve`. `review` shows, per customer, what waits — each message's subject
and recipients, what changed since the report last sent for that month, and the held files
that may explain a figure — read from the ledger, so it is what `approve` will send, byte for
byte. `approve` sends exactly that, once: the ledger marks each message sent; a second approval
finds nothing waiting. A month whose inventory changed since it was reconciled is refused: its
waiting messages would say what the month no longer says.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from pipelines.core.config import Config
from pipelines.core.errors import ConfigError
from pipelines.core.i18n import Formats, english
from pipelines.core.months import Month
from pipelines.core.visible import visible
from pipelines.delivery.mail import MailOutcome, deliver_waiting
from pipelines.jobs.monthly import exclusive
from pipelines.reports.versions import changed_figures
from pipelines.warehouse.connection import open_warehouse, run_sql, warehouse_exists


@dataclass(frozen=True)
class WaitingMessage:
    month: str
    customer_id: str | None
    kind: str
    subject: str
    recipients: str
    queued_at: datetime
    changes: list[str]  # a report's figures that differ from the version last sent for the month


@dataclass(frozen=True)
class Review:
    months: list[str]  # the months asked about, or every month with something waiting
    messages: list[WaitingMessage]
    held_files: list[tuple[str, str, str]]  # customer, where it is kept, why

    @property
    def fingerprint(self) -> str:
        """The waiting messages as one digest: what a person saw and approved."""
        shown = sorted(json.dumps([m.month, m.customer_id, m.kind, m.subject, m.recipients,
                                   str(m.queued_at)]) for m in self.messages)
        return hashlib.sha256("\n".join(shown).encode()).hexdigest()


def review_required(config: Config) -> bool:
    return config.partner.delivery.review == "required"


def waiting_review(config: Config, months: list[Month] | None = None,
                   customer_id: str | None = None) -> Review:
    """What waits for approval (read only)."""
    if not warehouse_exists(config.workspace):
        return Review(list(map(str, months or [])), [], [])
    wanted = None if months is None else [str(m) for m in months]
    with open_warehouse(config.workspace, read_only=True) as con:
        rows = run_sql(con, "jobs/review_waiting.sql", months=wanted,
                       customer_id=customer_id).fetchall()
        held = [(c, path, reason) for c, path, reason
                in run_sql(con, "jobs/status_held.sql").fetchall()
                if customer_id in (None, c) and (config.workspace.home / path).exists()]
    messages = []
    for month, customer, kind, subject, recipients, queued_at, figures, sent_figures in rows:
        changes: list[str] = []
        if figures:  # a report, or a correction carrying the updated one
            customer_config = config.contracts.get(customer)
            f = Formats(config.language_of(customer_config) if customer_config
                        else config.partner.partner.language)
            changes = (changed_figures(json.loads(sent_figures), json.loads(figures), f)
                       if sent_figures else ["first report for the month"])
        messages.append(WaitingMessage(month, customer, kind, subject, recipients, queued_at,
                                       changes))
    shown = wanted if wanted is not None else sorted({m.month for m in messages})
    return Review(shown, messages, held)


def describe_review(config: Config, review: Review) -> str:
    """The review as `review` prints it and Airflow's approval shows it."""
    months = ", ".join(review.months) or "every month"
    if not review.messages:
        lines = [f"Nothing waits for approval for {months}."]
    else:
        waiting = sorted({m.month for m in review.messages})
        month = waiting[0] if len(waiting) == 1 else "YYYY-MM"
        lines = [english("Waiting for approval (%(num)s message, %(months)s); `python -m "
                         "pipelines approve --month %(month)s` sends it:",
                         "Waiting for approval (%(num)s messages, %(months)s); `python -m "
                         "pipelines approve --month %(month)s` sends them:",
                         len(review.messages), months=months, month=month)]
    by_customer: dict[tuple[str, str | None], list[WaitingMessage]] = {}
    for message in review.messages:
        by_customer.setdefault((message.month, message.customer_id), []).append(message)
    for (month, customer_id), messages in by_customer.items():
        customer = config.contracts.get(customer_id) if customer_id else None
        name = f" ({customer.name})" if customer else ""
        lines.append(f"  {month} {customer_id or 'partner'}{name}:")
        for message in messages:
            lines.append(f"    {message.kind}: {visible(message.subject)}")
            lines.append(f"      to {message.recipients}")
            lines += [f"      {visible(change)}" for change in message.changes]
        held = [h for h in review.held_files if h[0] == customer_id]
        lines += [f"      held file {visible(path)}: {visible(reason)}"
                  for _, path, reason in held]
    for month in review.months:
        portfolio = config.workspace.reports_for(Month.parse(month)) / "portfolio.pdf"
        if portfolio.exists():
            lines.append(f"Portfolio {month}: {portfolio}")
    shown = {c for _, c in by_customer}
    others = [h for h in review.held_files if h[0] not in shown]
    if others:
        lines.append(f"Held files ({len(others)}): renamed as the reason says, or `approve "
                     f"--file`, they are taken in by the next run:")
        lines += [f"  {visible(path)}: {visible(reason)}" for _, path, reason in others]
    return "\n".join(lines)


@exclusive("approve")
def approve_messages(config: Config, months: list[Month] | None,
                     customer_id: str | None = None,
                     login: tuple[str, str] | None = None,
                     shown: str | None = None) -> MailOutcome:
    """Send what waits for `months` (every month: None), of one customer or all, exactly once.
    `shown`: the fingerprint of the review the approver saw (Airflow's approval): when what
    waits now differs (another run composed it again meanwhile), nothing is sent. Checked
    under the workspace lock, so no run can slip in between."""
    if customer_id is not None and config.contracts.get(customer_id) is None:
        raise ConfigError(f"--customer: there is no customer '{customer_id}' in contracts.yaml")
    if shown is not None:
        waiting = waiting_review(config, months, customer_id)
        # Nothing waiting: a retry after a failed delivery, or approved on the command line.
        if waiting.messages and waiting.fingerprint != shown:
            raise ConfigError(f"what waits for approval for {', '.join(waiting.months)} "
                              f"changed after it was shown for review (another run composed "
                              f"it again): nothing was sent; review what waits now")
    if warehouse_exists(config.workspace) and months:
        with open_warehouse(config.workspace, read_only=True) as con:
            stale = {m for (m, _) in run_sql(con, "reconcile/stale_months.sql",
                                             current="9999-12").fetchall()}
        behind = sorted(str(m) for m in months if str(m) in stale)
        if behind:
            raise ConfigError(f"approve: files came in for {', '.join(behind)} after the "
                              f"messages waiting were composed, so they may no longer hold: "
                              f"nothing was sent; run `python -m pipelines run --month "
                              f"{behind[0]}`, then review again")
    return deliver_waiting(config, months, customer_id, login)
