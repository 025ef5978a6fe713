"""Inbox files checked against their own evidence (interfaces.md "Inbox files", issue 28).

A file's month comes from its name, or its modification time; nothing in that is proof. A
partner who copies November's export into the inbox under October's name would otherwise
rewrite a month already reported to the CSM, and send an alert and a correction that are both
wrong. So a file is **held** — kept in quarantine/ with its reason, nothing of it loaded, the
other files and customers going on — when
- its own last-seen dates lie after the end of its month plus `lens.pull_window_days`;
- without such dates, its month was already reported to the CSM and its bytes are another
  month's snapshot of the customer;
- its month would come from a modification time in the future or before the customer's first
  term;
- a spreadsheet turned its serials into numbers.
Each reason names the month the evidence points to and the name that releases the file.
`approve --file` puts a held file back for the month it was held for; these checks are not
applied again to those bytes for that month (`Evidence.approved`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pipelines.core.config import Customer
from pipelines.core.i18n import N_, NP_, Message
from pipelines.core.months import Month, export_month, renamed_for
from pipelines.warehouse.connection import run_sql

# A modification time is in the future when it is more than this ahead of the clock: a file
# share's clock or a zip's local times are off by hours, a wrong year by months.
CLOCK_TOLERANCE = timedelta(days=1)
_HELD = N_("%(problem)s; %(what_to_do)s")


@dataclass(frozen=True)
class Hold:
    """Why a file is held, and what releases it."""
    problem: Message
    what_to_do: Message

    @property
    def reason(self) -> Message:
        """The whole reason in one line, as the intake ledger keeps it."""
        return Message.of(_HELD, problem=self.problem, what_to_do=self.what_to_do)

    @classmethod
    def from_reason(cls, reason: Message) -> Hold | None:
        values = dict(reason.values)
        if reason.text != _HELD:
            return None
        return cls(values["problem"], values["what_to_do"])


class Evidence:
    """What the files are checked against, read once per intake: the months reported to a
    CSM, and the files an operator approved."""

    def __init__(self, con, window_days: int, now: datetime):
        self.window_days, self.now = window_days, now
        self.reported_months = set(run_sql(con, "intake/reported_months.sql").fetchall())
        self.approved = set(run_sql(con, "intake/approved_files.sql").fetchall())

    def applies(self, customer_id: str, digest: str, month: Month) -> bool:
        """Whether a file is checked: not once an operator approved its bytes for its month."""
        return (customer_id, digest, str(month)) not in self.approved

    def reported(self, customer_id: str, month: Month) -> bool:
        """Whether the month's report went out to the customer's CSM."""
        return (customer_id, str(month)) in self.reported_months

    def modification(self, name: str, month: Month, modified: datetime, customer: Customer
                     ) -> Hold | None:
        """A month taken from a modification time in the future or before every term."""
        start = customer.all_terms[0].term.start
        changed = f"{modified:%Y-%m-%d %H:%M} UTC"
        if modified > self.now + CLOCK_TOLERANCE:
            problem = Message.of(N_("its name holds no month and it was last changed "
                                    "%(changed)s, in the future: the month it is for cannot "
                                    "be told"), changed=changed)
        elif month < Month.of(start):
            problem = Message.of(N_("its name holds no month and it was last changed "
                                    "%(changed)s, before the customer's first term (from "
                                    "%(start)s): the month it is for cannot be told"),
                                 changed=changed, start=str(start))
        else:
            return None
        return Hold(problem, Message.of(
            N_("put the month in its name (e.g. '%(name)s') and put it into "
               "inbox/%(customer)s/ again"), name=renamed_for(name, "YYYY-MM"),
            customer=customer.id))

    def last_seen(self, name: str, month: Month, latest: date, customer_id: str,
                  kept: Callable[[], str]) -> Hold | None:
        """Devices last seen after the month (and the days after it an export still shows
        it): the file is the inventory of a later month."""
        if latest <= month.last_day + timedelta(days=self.window_days):
            return None
        shows = export_month(latest, self.window_days)
        return Hold(Message.of(
            N_("its devices were last seen as late as %(latest)s, after %(month)s and the "
               "%(days)s days after it in which an export still shows it: this is the "
               "inventory of %(shows)s, not of %(month)s"),
            latest=latest.isoformat(), month=str(month), days=self.window_days,
            shows=str(shows)), _rename(name, shows, month, customer_id, kept()))

    def same_content(self, name: str, month: Month, other: Month, customer_id: str,
                     kept: Callable[[], str]) -> Hold:
        """Without last-seen dates: the bytes of `other` month's snapshot, for a month whose
        report the CSM already has (the caller asks `reported`: for a month not yet reported,
        a stable customer's unchanged export is that month's snapshot)."""
        return Hold(Message.of(
            N_("it has the same content as the snapshot of %(other)s, and %(month)s was "
               "already reported to the CSM: taken for %(month)s, it would change what was "
               "sent"), other=str(other), month=str(month)),
            _rename(name, other, month, customer_id, kept()))


def _rename(name: str, shows: Month, month: Month, customer_id: str, kept: str) -> Message:
    return Message.of(N_("rename it to '%(name)s' and put it into inbox/%(customer)s/ again; "
                         "if it really is the inventory of %(month)s, approve it: "
                         "`python -m pipelines approve --file %(kept)s`"),
                      name=renamed_for(name, shows), customer=customer_id, month=str(month),
                      kept=kept)


def damaged_serials(count: int, row: int, cell: str, customer_id: str) -> Hold:
    """Serials a spreadsheet turned into numbers: counted, devices would vanish or merge."""
    return Hold(Message.of(*NP_(
        "%(damaged)s serial was turned into a number by a spreadsheet (row %(row)s: "
        "'%(cell)s'): its device cannot be told apart",
        "%(damaged)s serials were turned into numbers by a spreadsheet (row %(row)s: "
        "'%(cell)s'): counted so, devices would be lost or merged"), count="damaged",
        damaged=count, row=str(row), cell=cell), Message.of(
        N_("re-export from Lens without opening it in Excel, and put the export into "
           "inbox/%(customer)s/ again"), customer=customer_id))
