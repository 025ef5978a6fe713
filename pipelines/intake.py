"""Taking files in from the drop folder: inbox/<customer>/ → raw layer → archive/ or quarantine/.

Order of work per file, so that a crash at any point loses nothing and counts nothing twice:
the rows and the intake record are committed in one transaction, *then* the file is moved to
archive/. A file still in the inbox whose content was already loaded is archived as a
duplicate on the next run. No file is ever deleted.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipelines.config import Contracts
from pipelines.ingest_lens import UnreadableExport, read_inventory_export, read_rma_log
from pipelines.months import Month, month_in_name
from pipelines.progress import track
from pipelines.warehouse import SnapshotLoad, load_frame, open_warehouse, run_sql, transaction
from pipelines.workspace import Workspace

log = logging.getLogger("polyrecon")


@dataclass(frozen=True)
class IntakeResult:
    path: str  # where the file was, relative to the workspace
    customer_id: str | None
    outcome: str  # loaded | duplicate | quarantined
    detail: str


@dataclass(frozen=True)
class _Arrival:
    path: Path
    customer_id: str | None
    name: str
    month: Month
    kind: str  # inventory | rma


def is_rma_log(name: str) -> bool:
    return name.lower().startswith("rma")


def inbox_files(workspace: Workspace, customer_id: str | None = None) -> list[Path]:
    """Files waiting in the inbox, in the order they are taken: modification time, then name.

    Hidden files (".DS_Store", editors' "~$" lock files) are the operating system's, not the
    partner's uploads: they are left where they are.
    """
    if not workspace.inbox.exists():
        return []
    folders = [workspace.inbox / customer_id] if customer_id else [workspace.inbox]
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith((".", "~$")):
                continue
            if entry.is_dir() and not entry.is_symlink() and folder == workspace.inbox:
                found += [p for p in entry.iterdir() if not p.name.startswith((".", "~$"))
                          and (p.is_file() or p.is_symlink())]
            elif entry.is_file() or entry.is_symlink():
                found.append(entry)
    return sorted(found, key=lambda p: (p.lstat().st_mtime_ns, p.name))


def take_inbox(workspace: Workspace, contracts: Contracts,
               customer_id: str | None = None) -> list[IntakeResult]:
    files = inbox_files(workspace, customer_id)
    if not files:
        log.info("Inbox: no new files")
        return []
    results = []
    with open_warehouse(workspace) as con:
        for path in track(files, "Taking in inbox files"):
            result = _take(con, workspace, contracts, path)
            log.info("%s %s: %s", result.outcome, result.path, result.detail)
            results.append(result)
    return results


def _take(con, workspace: Workspace, contracts: Contracts, path: Path) -> IntakeResult:
    customer_id = path.parent.name if path.parent != workspace.inbox else None
    modified = datetime.fromtimestamp(path.lstat().st_mtime, tz=timezone.utc)
    arrival = _Arrival(path, customer_id, path.name,
                       month_in_name(path.name) or Month.of(modified.date()),
                       "rma" if is_rma_log(path.name) else "inventory")
    shown = workspace.relative(path)
    received_at = datetime.now(timezone.utc).replace(tzinfo=None)

    if path.is_symlink() or not path.is_file():
        return _quarantine(con, workspace, arrival, "", received_at,
                           "this is a link or special file, not an uploaded file; copy the "
                           "export itself into the folder")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if customer_id is None:
        return _quarantine(con, workspace, arrival, digest, received_at,
                           "files must be put in the customer's folder, inbox/<customer_id>/")
    if contracts.get(customer_id) is None:
        return _quarantine(con, workspace, arrival, digest, received_at,
                           f"there is no customer '{customer_id}' in contracts.yaml; add the "
                           f"contract, or put the file in the right customer's folder")
    # A duplicate is the same content for the same customer and month. The same bytes named
    # for another month are that month's snapshot: a small, stable customer's export can be
    # identical two months running, and that month must not show NO_DATA.
    already = con.execute(
        "SELECT count(*) FROM intake_log WHERE customer_id = ? AND sha256 = ? AND month = ? "
        "AND kind = ? AND outcome = 'loaded'",
        [customer_id, digest, str(arrival.month), arrival.kind]).fetchone()[0]
    if already:
        target = _free_path(workspace.archive / customer_id / "duplicates" / arrival.name)
        _move(path, target)
        _log_intake(con, arrival, digest, received_at, "duplicate", workspace.relative(target),
                    "the same content was already taken in; nothing changed")
        return IntakeResult(shown, customer_id, "duplicate",
                            f"same content as an earlier file for {arrival.month}, archived as "
                            f"{workspace.relative(target)}")
    try:
        parsed = read_rma_log(path) if arrival.kind == "rma" else read_inventory_export(path)
    except UnreadableExport as error:
        return _quarantine(con, workspace, arrival, digest, received_at, str(error))

    folder = "rma" if arrival.kind == "rma" else str(arrival.month)
    target = _free_path(workspace.archive / customer_id / folder / arrival.name)
    with transaction(con):
        receipt = _log_intake(con, arrival, digest, received_at, "loaded",
                              workspace.relative(target), None)
        if arrival.kind == "rma":
            load_frame(con, "load_rma_log.sql", parsed.rows, sha256=digest,
                       customer_id=customer_id, file_name=arrival.name)
        else:
            load = SnapshotLoad(f"{customer_id}/{arrival.month}/{digest}", customer_id,
                                str(arrival.month), receipt, received_at, "lens_csv",
                                arrival.name, digest)
            load.start(con)
            load.add_rows(con, parsed.rows)
            load.finish(con, len(parsed.rows))
    _move(path, target)
    what = "RMA log" if arrival.kind == "rma" else f"inventory for {arrival.month}"
    return IntakeResult(shown, customer_id, "loaded", f"{what}, {len(parsed.rows)} rows")


def _log_intake(con, arrival: _Arrival, digest: str, received_at: datetime, outcome: str,
                stored_path: str, reason: str | None) -> int:
    receipt = con.execute("SELECT nextval('receipt_seq')").fetchone()[0]
    run_sql(con, "log_intake.sql", receipt_seq=receipt, customer_id=arrival.customer_id,
            file_name=arrival.name, sha256=digest, kind=arrival.kind, month=str(arrival.month),
            received_at=received_at, outcome=outcome, stored_path=stored_path, reason=reason)
    return receipt


def _quarantine(con, workspace: Workspace, arrival: _Arrival, digest: str,
                received_at: datetime, reason: str) -> IntakeResult:
    folder = workspace.quarantine / (arrival.customer_id or "_unsorted")
    target = _free_path(folder / arrival.name)
    _move(arrival.path, target)
    reason_file = target.with_name(target.name + ".reason.txt")
    reason_file.write_text(
        f"File:       {workspace.relative(arrival.path)}\n"
        f"Customer:   {arrival.customer_id or '(none: not in a customer folder)'}\n"
        f"Received:   {received_at:%Y-%m-%d %H:%M:%S} UTC\n"
        f"SHA-256:    {digest or '(not read)'}\n"
        f"Problem:    {reason}\n"
        f"What to do: correct the file and put it into inbox/<customer_id>/ again; this copy "
        f"stays here for reference.\n", encoding="utf-8")
    _log_intake(con, arrival, digest, received_at, "quarantined", workspace.relative(target),
                reason)
    return IntakeResult(workspace.relative(arrival.path), arrival.customer_id, "quarantined",
                        f"{reason} (kept as {workspace.relative(target)})")


def _free_path(wanted: Path) -> Path:
    """`wanted`, or `name (2).ext`, `name (3).ext` … if taken: nothing is overwritten."""
    candidate, number = wanted, 1
    while candidate.exists() or candidate.is_symlink() \
            or candidate.with_name(candidate.name + ".reason.txt").exists():
        number += 1
        candidate = wanted.with_name(f"{wanted.stem} ({number}){wanted.suffix}")
    return candidate


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)  # atomic within the workspace; a link moves as a link
