"""A report's versions as the mail ledger keeps them: the figures of each report sent (raw
values, worded only when shown) and what changed between the version last sent and now. The
renders use it to mark an updated report on its first page, and delivery to say what changed
in the message that carries it, so both tell the same change."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from pipelines.core.i18n import CATEGORY_NAMES, STATUS_NAMES, Formats, PreviousWords


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
    figures: str | None  # a report's table as JSON (see stored_figures; none before)


def sent_version(sent: list[SentMessage], customer_id: str) -> SentMessage | None:
    """The last version of a customer's report sent: a report, or a correction carrying the
    updated report (with its table)."""
    versions = [m for m in sent if m.customer_id == customer_id and m.figures
                and m.kind in ("report", "correction")]
    return versions[-1] if versions else None


def changes_since_sent(sent: list[SentMessage], customer_id: str, figures: list[list],
                       f: Formats) -> tuple[date, list[str]] | None:
    """When the version of a customer's report last sent states other figures than `figures`
    (report_figures): the day it was sent and what changed since (an updated report says so on
    its first page, so a forwarded copy is told apart from the one sent first)."""
    version = sent_version(sent, customer_id)
    changes = (changed_figures(json.loads(version.figures), {"rows": figures}, f)
               if version else [])
    return (version.sent_at.date(), changes) if changes else None


def report_figures(rows: list) -> list[list]:
    """A customer's result rows as the report message tabulates them, as raw values."""
    return [[r.category, r.status, r.devices_counted, r.ordered_devices,
             None if r.baseline is None else str(r.baseline),
             None if r.growth_pct is None else str(r.growth_pct)] for r in rows]


def stored_figures(figures: list[list]) -> str:
    """The ledger's `figures`: {"rows": report_figures}. Ledgers before issue 30 hold a list,
    the table as worded then (see changed_figures)."""
    return json.dumps({"rows": figures})


def _shown(row: list, f: Formats) -> list[str]:
    category, status, counted, ordered, baseline, growth = row
    return [f.category(category), f.status(status), f.number(counted), f.number(ordered),
            f.decimal(None if baseline is None else Decimal(baseline)),
            f.decimal(None if growth is None else Decimal(growth))]


def report_table(rows: list, f: Formats) -> list[list[str]]:
    """A customer's result rows as the report message tabulates them."""
    return [_shown(row, f) for row in report_figures(rows)]


def report_table_head(f: Formats) -> list[str]:
    # "%%": the templates' message, which Jinja always %-formats.
    return [f.gettext("Category"), f.gettext("Status"), f.gettext("Counted"),
            f.gettext("Ordered"), f.gettext("Baseline"), f.gettext("Growth %%") % {}]


def changed_figures(sent: dict | list, figures: dict | list, f: Formats) -> list[str]:
    """One line per category whose figures differ between a report's version as sent and as
    composed now ("Video: Status True-up → OK, …"), each as the ledger keeps it
    (stored_figures, or a table worded before issue 30: a change of words is no change)."""
    head = report_table_head(f)
    was, now = _worded(sent, f), _worded(figures, f)
    lines = []
    for category, row in now.items():
        before = was.pop(category, None)
        if before is None:
            lines.append(f.gettext("%(category)s: new in this report") % {"category": category})
            continue
        diffs = [f"{name} {old} → {new}" for name, old, new
                 in zip(head[1:], before[1:], row[1:], strict=False) if old != new]
        if diffs:
            lines.append(f"{category}: {', '.join(diffs)}")
    lines += [f.gettext("%(category)s: no longer in the report") % {"category": category}
              for category in was]
    return lines


def _worded(figures: dict | list, f: Formats) -> dict[str, list[str]]:
    """A report's table as kept in the ledger, in today's words, by category."""
    if isinstance(figures, dict):
        return {row[0]: row for row in map(partial(_shown, f=f), figures["rows"])}
    then = PreviousWords(f.language)
    categories = {then.category(key): f.category(key) for key in CATEGORY_NAMES}
    statuses = {then.status(key): f.status(key) for key in STATUS_NAMES}
    return {categories.get(row[0], row[0]): [categories.get(row[0], row[0]),
                                             statuses.get(row[1], row[1]), *row[2:]]
            for row in figures}
