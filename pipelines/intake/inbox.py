"""The drop folder: what waits in inbox/<customer>/, claimed exactly once, moved only by rename.

A file is claimed by renaming it into inbox/.claimed/<customer>/ (atomic; a second process
finds it gone and skips it); a crash leaves it there and the next run takes it first. Files
are then moved (never copied, never deleted) to archive/ or quarantine/ by take.py, and a
name already taken there gets a number (`free_path`): nothing is overwritten.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.core.files import free_path
from pipelines.core.i18n import N_, Message
from pipelines.core.months import (
    Month,
    export_month,
    month_by_modification,
    month_in_name,
)
from pipelines.core.visible import text_name
from pipelines.core.workspace import Workspace, shown_path

CLAIMED = ".claimed"


NO_CUSTOMER = "_no-customer"  # cannot clash: customer ids start with a letter or digit


@dataclass(frozen=True)
class Arrival:
    claimed: Path
    shown: str  # inbox/<customer>/<name>, as the partner put it
    customer_id: str | None
    month: Month
    kind: str  # inventory | rma
    modified: datetime  # when the file was last changed (UTC)
    recovered: bool = False  # left claimed by a run that stopped
    month_from_name: bool = True  # else the month the file was last changed
    # The upload's own name when it is taken in under another (object_inbox.py's local names).
    given_name: str | None = None

    @property
    def month_note(self) -> str:
        """What a partner needs to know of a month the name did not give."""
        return "" if self.month_from_name else f"; {month_by_modification(self.month)}"

    @property
    def name(self) -> str:
        return self.claimed.name

    @property
    def upload_name(self) -> str:
        """The name the intake ledger keeps: the one the partner gave the upload."""
        return self.given_name or self.claimed.name


def is_rma_log(name: str) -> bool:
    return name.lower().startswith("rma")


def _visible(path: Path) -> bool:
    # The operating system's own files (".DS_Store", Office's "~$" locks) stay where they are.
    return not path.name.startswith((".", "~$"))


def _modified(path: Path) -> int:
    return path.lstat().st_mtime_ns


def inbox_files(workspace: Workspace, customer_id: str | None = None) -> list[Path]:
    """What waits in the inbox, in the order it is taken: modification time, then name.

    Everything in a customer folder counts, links and folders included (they are quarantined,
    never followed); at the top of the inbox everything but the customer folders does.
    """
    inbox = workspace.inbox
    if not inbox.is_dir():
        return []
    found: list[Path] = []
    for entry in filter(_visible, inbox.iterdir()):
        is_folder = entry.is_dir() and not entry.is_symlink()
        if is_folder and customer_id in (None, entry.name):
            found += filter(_visible, entry.iterdir())
        elif not is_folder and customer_id is None:
            found.append(entry)
    return sorted(found, key=lambda p: (_modified(p), p.name))


def claimed_files(workspace: Workspace, customer_id: str | None = None) -> list[Path]:
    """Files claimed by a run that did not finish: they are taken first."""
    root = workspace.inbox / CLAIMED
    if not root.is_dir():
        return []
    folders = [root / customer_id] if customer_id else sorted(root.iterdir())
    found = [p for folder in folders if folder.is_dir() for p in folder.iterdir()]
    return sorted(found, key=lambda p: (_modified(p), p.name))


def signature(path: Path) -> tuple[int, int] | None:
    """Size and modification time: what changes while a file is still being written."""
    try:
        status = path.lstat()
    except FileNotFoundError:  # taken by another run meanwhile
        return None
    return status.st_size, status.st_mtime_ns


def settled(paths: list[Path], settle_seconds: float, clock=time.time, sleep=time.sleep
            ) -> tuple[list[Path], list[Path]]:
    """The files that have stopped changing, and those still being written. A file changed
    within the last `settle_seconds` is looked at again once it is that old (one wait for all
    of them, never longer than `settle_seconds`); one whose size or time changed meanwhile is
    still being written. A file that vanished meanwhile (another run took it) is neither."""
    first = {path: signature(path) for path in paths}
    youngest = max((signature[1] for signature in first.values() if signature), default=0)
    wait = youngest / 1e9 + settle_seconds - clock()
    if settle_seconds and wait > 0:
        sleep(min(wait, settle_seconds))
    ready, writing = [], []
    for path in paths:
        now = signature(path)
        if now is None or first[path] is None:
            continue
        (ready if now == first[path] else writing).append(path)
    return ready, writing


def folder_customer(workspace: Workspace, path: Path) -> str | None:
    return path.parent.name if path.parent != workspace.inbox else None


def claim(workspace: Workspace, path: Path, window_days: int, month: Month | None = None,
          given_name: str | None = None) -> Arrival | None:
    """Claim `path`, with the month it counts for: `month` when given, else the one its name
    (`given_name`, the upload's own, when it is taken in under another) holds, else the one of
    its modification time; a full date in the name and a modification time count for the
    month before within their month's first `window_days` days (lens.pull_window_days), as a
    Lens pull does."""
    claim_root = workspace.inbox / CLAIMED
    if path.parent.parent == claim_root:  # claimed before a crash
        claimed, folder = path, path.parent.name
    else:
        folder = text_name(path.parent.name) if path.parent != workspace.inbox else NO_CUSTOMER
        # A name that is no UTF-8 text is claimed under its text form: the warehouse, the logs
        # and the e-mails all take text, and the name still holds its month.
        claimed = claim_root / folder / text_name(path.name)
        claimed.parent.mkdir(parents=True, exist_ok=True)
        if claimed.exists() or claimed.is_symlink():  # same name already waiting: keep both
            claimed = free_path(claimed)
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another run took it first
            return None
    customer_id = None if folder == NO_CUSTOMER else folder
    shown = shown_path(customer_id, given_name or path.name)
    modified = datetime.fromtimestamp(_modified(claimed) / 1e9, tz=UTC)
    named = month or month_in_name(given_name or claimed.name, window_days)
    taken_for = named or export_month(modified.date(), window_days)
    return Arrival(claimed, shown, customer_id, taken_for,
                   "rma" if is_rma_log(given_name or claimed.name) else "inventory", modified,
                   recovered=claimed == path, month_from_name=named is not None,
                   given_name=given_name)


def sha256_of(path: Path) -> str:
    """The content hash, read without following a link swapped in after the check."""
    digest = hashlib.sha256()
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(descriptor, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def not_a_plain_file(path: Path) -> Message | None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return Message.of(N_("this is a link, not an uploaded file: it was not followed; copy "
                             "the export itself into the folder"))
    if stat.S_ISDIR(mode):
        return Message.of(N_("this is a folder: put the files directly into "
                             "inbox/<customer_id>/ (the folder is kept here as it was)"))
    if not stat.S_ISREG(mode):
        return Message.of(N_("this is not a regular file (a device, pipe or socket): it was "
                             "not opened"))
    return None


def move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)  # atomic within the workspace; a link moves as a link
