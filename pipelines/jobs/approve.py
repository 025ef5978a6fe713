"""`approve --file PATH`: a held file put back into the inbox, for the month it was held for.

A file is held when its own evidence contradicts the month it would count for
(intake/evidence.py); an operator who knows better vouches for it here. The approval is a line
in the intake ledger (outcome `approved`: the file's customer, content and month), so the next
run takes the file without checking those bytes against their evidence for that month again;
renamed for another month, it is checked as any file is. Nothing else in the warehouse changes:
the file's month is still decided where every file's is, when it is taken in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.core.config import Config
from pipelines.core.errors import ConfigError
from pipelines.core.files import free_path
from pipelines.core.i18n import N_, Formats, Message
from pipelines.core.workspace import Workspace
from pipelines.intake.inbox import move, sha256_of
from pipelines.jobs.monthly import exclusive
from pipelines.warehouse.connection import (
    next_receipt,
    open_warehouse,
    run_sql,
    transaction,
    warehouse_exists,
)


@dataclass(frozen=True)
class Approved:
    held: str  # where it was kept, relative to the workspace
    put_back: str  # where it waits now
    month: str  # the month the next run takes it for


@exclusive("approve")
def approve_file(config: Config, path: Path) -> Approved:
    workspace = config.workspace
    kept = _in_workspace(workspace, path)
    record = None
    if warehouse_exists(workspace) and (workspace.home / kept).is_file():
        with open_warehouse(workspace, read_only=True) as con:
            record = run_sql(con, "jobs/held_file.sql", stored_path=kept).fetchone()
    if record is None or record[0] != "held":
        raise ConfigError(f"approve --file: {path} is not a held file: give the path of one "
                          f"that `status` lists under \"Held files waiting\"")
    _, customer_id, file_name, digest, kind, month = record
    held = workspace.home / kept
    if sha256_of(held) != digest:
        raise ConfigError(f"approve --file: {kept} changed since it was held, so it is not what "
                          f"was checked: put the corrected file into inbox/{customer_id}/ instead")
    # An S3 upload's own name may be none a file system takes: put back under the held one's.
    from pipelines.intake.object_inbox import is_local_name

    name = file_name if is_local_name(file_name) else held.name
    target = free_path(workspace.inbox / customer_id / name)
    put_back = workspace.relative(target)
    now = datetime.now(UTC).replace(tzinfo=None)
    with open_warehouse(workspace) as con, transaction(con):
        run_sql(con, "intake/log_intake.sql", receipt_seq=next_receipt(con),
                customer_id=customer_id, file_name=target.name, sha256=digest, kind=kind,
                month=month, received_at=now, outcome="approved", stored_path=put_back,
                reason=None, reason_message=None)
    move(held, target)  # a rename: it keeps its modification time, and so its month
    _note_in_reason_file(held, Formats(config.partner.partner.language), now, put_back)
    return Approved(kept, put_back, month)


def _in_workspace(workspace: Workspace, path: Path) -> str:
    """PATH as given (from here, or from the workspace as `status` shows it), relative to the
    workspace."""
    found = path if path.is_absolute() or path.exists() else workspace.home / path
    return workspace.relative(Path(os.path.normpath(found.absolute())))


def _note_in_reason_file(held: Path, formats: Formats, when: datetime, put_back: str) -> None:
    reason = held.with_name(held.name + ".reason.txt")
    if reason.exists():
        note = Message.of(N_("%(time)s UTC, put back into the inbox as %(path)s (approve "
                             "--file): taken for its month without the check that held it"),
                          time=f"{when:%Y-%m-%d %H:%M:%S}", path=put_back)
        label = formats.gettext("Approved:")
        with reason.open("a", encoding="utf-8") as handle:
            handle.write(f"{label} {note.shown(formats)}\n")
