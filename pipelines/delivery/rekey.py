"""The ledger keys polyrecon gave messages before issue 27, kept only to re-key a ledger written
with them (mail.py) and to recognise their `.eml` names in outbox/ (`rebuild`).

Those keys hashed the wording: kind, customer, month, the subject, a content text (result rows
as `repr`, a correction's "now" sentence in the reader's language, a rejected file's English
reason) and the recipients in order. A message composed now is matched to its line in such a
ledger by composing it again with that formula: this must be done with the wording the ledger
was written with (partner.yaml, contracts.yaml and the translations as they were), so the
re-keying runs before anything else is composed, on the first send after the upgrade.
"""
from __future__ import annotations

import hashlib

from pipelines.core.config import Config
from pipelines.core.i18n import Formats, Message, PreviousWords
from pipelines.core.months import Month
from pipelines.delivery.messages import (
    Draft,
    RejectedUpload,
    compose,
    what_holds,
)
from pipelines.reconciliation.results import (
    NO_DATA,
    MonthResult,
    ReconciliationRow,
    RmaRow,
    as_written,
)
from pipelines.reports.versions import SentMessage


def recomposed(config: Config, result: MonthResult, rejected: list[RejectedUpload],
               uploads: dict[str, list[Message]], sent: list[SentMessage]
               ) -> list[tuple[Draft, str]]:
    """The month's messages as compose() makes them from `result`, each with the key the
    previous formula gave it; `sent` holds that formula's keys, so a report is "updated" and
    an alert corrected exactly when the previous version decided so."""
    def key(draft: Draft, month: Month) -> str:
        return legacy_key(draft, month, result, rejected, uploads)

    return [(draft, key(draft, result.month))
            for draft in compose(config, result, rejected, uploads, sent, key,
                                 one_message=False, formats=PreviousWords)]


def legacy_key(draft: Draft, month: Month, result: MonthResult,
               rejected: list[RejectedUpload], uploads: dict[str, list[Message]]) -> str:
    about = "" if draft.kind == "file_rejected" else str(month)
    return hashlib.sha256("\x1f".join(
        [draft.kind, draft.customer_id or "", about, draft.subject,
         _content(draft, result, rejected, uploads), ",".join(draft.to + draft.cc)]
    ).encode()).hexdigest()


def _content(draft: Draft, result: MonthResult, rejected: list[RejectedUpload],
             uploads: dict[str, list[Message]]) -> str:
    rows = [r for r in result.rows if r.customer_id == draft.customer_id]
    rma = next((r for r in result.rma if r.customer_id == draft.customer_id), None)
    if draft.kind == "report":
        return f"([{', '.join(map(_keyed, rows))}], {_keyed(rma) if rma else None})"
    if draft.kind == "true_up":
        return _keyed(next(r for r in rows if r.category == draft.topic))
    if draft.kind == "rma":
        return _keyed(rma)
    if draft.kind == "missing_inventory":
        missing = [r.category for r in rows if r.status == NO_DATA]
        notes = uploads.get(draft.customer_id)
        # The notes in English, as they were keyed before they were translated.
        return repr((missing, list(map(str, notes)))) if notes else repr(missing)
    if draft.kind == "correction":
        now = what_holds(draft.topic, draft.stated["now"], PreviousWords(draft.language))
        return repr((draft.stated["corrects"], now))
    item = next(i for i in rejected if i.receipt == draft.stated["receipt"])
    return repr((item.path, item.detail(Formats("en"))))


def _keyed(row: ReconciliationRow | RmaRow) -> str:
    """A row as a key's content took it: the text rows were keyed by when they held their
    values as written."""
    values = ", ".join(f"{name}={value!r}" for name, value in as_written(row).items())
    return f"{type(row).__name__}({values})"
