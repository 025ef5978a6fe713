"""Taking files in from the drop folder: inbox/<customer>/ → raw layer → archive/ or quarantine/.

Exactly once, and nothing lost, whatever lands in the folder:
1. claim: the file is renamed into inbox/.claimed/<customer>/ (atomic; a second process
   finds it gone and skips it); a crash leaves it there and the next run takes it first;
2. load: rows, intake record and quality findings are committed in one transaction (for
   inventory exports, one transaction per batch of files: see raw/publish.py);
3. archive: only then is the file moved to archive/ (or quarantine/ with a reason file).
A claimed file whose content was already committed is moved to where the record says it
went: the crash fell between 2 and 3. No file is ever deleted.

An inventory export whose own evidence contradicts the month it would count for is held
(evidence.py): set aside in quarantine/ like a rejected file, before anything of it is loaded.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipelines.core.catalog import CatalogRow
from pipelines.core.config import Contracts
from pipelines.core.files import free_path
from pipelines.core.i18n import N_, Formats, Message, english
from pipelines.core.months import Month
from pipelines.core.nearest import nearest
from pipelines.core.progress import track
from pipelines.core.timers import timed
from pipelines.core.visible import visible
from pipelines.core.workspace import Workspace, shown_path
from pipelines.intake.evidence import Evidence, Hold, damaged_serials
from pipelines.intake.export_reader import (
    ExportPlan,
    plan_inventory_export,
    read_rma_log,
)
from pipelines.intake.inbox import (
    NO_CUSTOMER,
    Arrival,
    claim,
    claimed_files,
    folder_customer,
    inbox_files,
    move,
    not_a_plain_file,
    settled,
    sha256_of,
    signature,
)
from pipelines.intake.staging import stage_exports, staged_last_seen
from pipelines.intake.uploads import UnreadableExport
from pipelines.raw.publish import SnapshotBatch, StagedSnapshot, publish_rma_log
from pipelines.raw.quality import QualityGate
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import (
    load_frame,
    next_receipt,
    open_warehouse,
    run_sql,
    transaction,
)

log = logging.getLogger("polyrecon")
# An intake batch is published when it holds this many files or rows: large enough to spread
# a transaction and a GX validation over many files, small enough for DuckDB's memory limit.
BATCH_FILES = 500
BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class IntakeResult:
    path: str  # where the file was, relative to the workspace
    customer_id: str | None
    # loaded | duplicate | quarantined | held (evidence.py) | waiting (still being written: left)
    outcome: str
    detail: str
    month: str | None = None  # the month a loaded inventory snapshot counts for
    kind: str = "inventory"
    month_from_name: bool = True  # else the month the file was last changed (said in detail)


def take_inbox(workspace: Workspace, contracts: Contracts, catalog: list[CatalogRow],
               language: str, customer_id: str | None = None, gate: QualityGate | None = None,
               settle_seconds: float = 0, months: dict[str, Month] | None = None, *,
               window_days: int, check_evidence: bool = True,
               names: dict[tuple[str, str], str] | None = None) -> list[IntakeResult]:
    """Take what waits in the inbox; an upload that changed within the last `settle_seconds`
    is looked at again once it is that old, and left for the next run if it still changes.
    A rejected file's reason file is written in `language`, the partner's. `window_days`
    (lens.pull_window_days) decides the month of a file by its export date (claim).
    `months` (file name → month) overrides the month a name holds: `rebuild` takes archived
    files for the month they were archived under, without `check_evidence` (evidence.py:
    they were taken in once). `names` ((customer folder, file name) → the upload's own name;
    a file name is unique only within its folder) gives the name the ledger and the messages
    keep for a file taken in under a name of the S3 drop folder's own (object_inbox.py)."""
    uploads, still_written = settled(inbox_files(workspace, customer_id), settle_seconds)
    unsettled = []
    for path in still_written:
        customer_id_of = folder_customer(workspace, path)
        unsettled.append(IntakeResult(
            shown_path(customer_id_of, path.name), customer_id_of, "waiting",
            f"still being written (it changed within the last {settle_seconds:g} s): the next "
            f"run takes it"))
    for result in unsettled:
        log.info("%s %s: %s", result.outcome, result.path, result.detail)
    waiting = claimed_files(workspace, customer_id) + uploads
    if not waiting:
        if not unsettled:
            log.info("Inbox: no new files")
        return unsettled
    gate = gate or QualityGate.shared()
    gate.warm_up()
    with open_warehouse(workspace) as con:
        with transaction(con):
            store_catalog(con, catalog)  # the audit classifies models
        with tempfile.TemporaryDirectory(prefix="polyrecon-intake-") as scratch:
            evidence = Evidence(con, window_days, datetime.now(UTC)) if check_evidence else None
            intake = _Intake(con, workspace, contracts, gate, Path(scratch), Formats(language),
                             evidence)
            for path in track(waiting, "Taking in inbox files"):
                arrival = claim(workspace, path, window_days, (months or {}).get(path.name),
                                (names or {}).get(
                                    (folder_customer(workspace, path) or NO_CUSTOMER, path.name)))
                if arrival is not None:
                    intake.take(arrival)
            intake.publish()
    return unsettled + intake.results()


@dataclass(frozen=True)
class _Planned:
    arrival: Arrival
    plan: ExportPlan
    snapshot_id: str
    receipt: int
    digest: str
    received_at: datetime
    target: Path
    slot: int  # its place among the results
    signature: tuple[int, int] | None  # size and time when its SHA-256 was taken


class _Intake:
    """Files settled in arrival order. Inventory exports whose header is sound are planned, then
    read (staging.py), audited and published in batches (one transaction each, see
    raw/publish.py); everything else is settled at once. A file's result is reported once
    its batch is published."""

    def __init__(self, con, workspace: Workspace, contracts: Contracts, gate: QualityGate,
                 scratch: Path, formats: Formats, evidence: Evidence | None):
        self.con, self.workspace, self.contracts, self.gate = con, workspace, contracts, gate
        self.evidence = evidence  # None: files are not checked against their evidence
        self.formats = formats  # of the reason files: the partner's language
        self.scratch = scratch  # converted copies of planned exports, until they are staged
        self.batch = SnapshotBatch(con, gate)
        self.planned: list[_Planned] = []
        self.slots: list[IntakeResult | None] = []
        # Where each (customer, content, month, kind) went when loaded: read once, kept up to
        # date here (this process holds the workspace lock), not queried file by file.
        self.loaded: dict[tuple, str] = {
            (customer_id, sha256, month, kind): stored_path for customer_id, sha256, month, kind,
            stored_path in run_sql(con, "intake/loaded_files.sql").fetchall()}

    def _quarantine(self, arrival: Arrival, digest: str, received_at: datetime,
                    reason: Message, outcome: str = "quarantined") -> IntakeResult:
        """Record first, then move: a crash in between leaves the file claimed, and the next
        run finds the record and finishes the move (`_finish_quarantine`). A held file
        (`outcome` held) is set aside the same way."""
        con, workspace = self.con, self.workspace
        target = self._quarantine_path(arrival)
        with transaction(con):
            _log_intake(con, arrival, next_receipt(con), digest, received_at, outcome,
                        workspace.relative(target), reason)
        return self._move_to_quarantine(arrival, target, digest, received_at, reason, outcome)

    def _quarantine_path(self, arrival: Arrival) -> Path:
        folder = self.workspace.quarantine / (arrival.customer_id or NO_CUSTOMER)
        return free_path(folder / arrival.name)

    def _hold(self, arrival: Arrival, digest: str, received_at: datetime, hold: Hold
              ) -> IntakeResult:
        return self._quarantine(arrival, digest, received_at, hold.reason, "held")

    def _move_to_quarantine(self, arrival: Arrival, target: Path, digest: str,
                            received_at: datetime, reason: Message, outcome: str
                            ) -> IntakeResult:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_name(target.name + ".reason.txt").write_text(
            reason_file(self.formats, arrival.shown, arrival.customer_id, received_at, digest,
                        reason), encoding="utf-8")
        move(arrival.claimed, target)
        return IntakeResult(arrival.shown, arrival.customer_id, outcome,
                            f"{reason} (kept as {visible(self.workspace.relative(target))})")

    def _finish_quarantine(self, arrival: Arrival, digest: str) -> IntakeResult | None:
        """A claimed file recorded as quarantined (or held) but never moved there (a crash in
        between): moved now, to where the record says."""
        found = run_sql(self.con, "intake/find_unfinished_quarantine.sql",
                        customer_id=arrival.customer_id, file_name=arrival.upload_name,
                        sha256=digest).fetchall()
        for stored_path, received_at, reason, reason_message, outcome in found:
            target = self.workspace.home / stored_path
            if not (target.exists() or target.is_symlink()):
                return self._move_to_quarantine(arrival, target, digest, received_at,
                                                Message.stored(reason_message, reason), outcome)
        return None

    def results(self) -> list[IntakeResult]:
        return [result for result in self.slots if result is not None]

    def take(self, arrival: Arrival) -> None:
        self.slots.append(None)
        with timed("intake"):
            result = self._settle(arrival)
        if result is not None:
            self._report(len(self.slots) - 1, result)
        if len(self.planned) >= BATCH_FILES \
                or sum(p.plan.data_lines for p in self.planned) >= BATCH_ROWS:
            self.publish()

    def _report(self, slot: int, result: IntakeResult) -> None:
        log.info("%s %s: %s", result.outcome, result.path, result.detail)
        self.slots[slot] = result

    def _settle(self, arrival: Arrival) -> IntakeResult | None:
        con, workspace = self.con, self.workspace
        received_at = datetime.now(UTC).replace(tzinfo=None)
        problem = not_a_plain_file(arrival.claimed)
        before = signature(arrival.claimed)
        digest = "" if problem else sha256_of(arrival.claimed)
        unfinished = arrival.recovered and self._finish_quarantine(arrival, digest)
        if unfinished:
            return unfinished
        if problem:
            return self._quarantine(arrival, "", received_at, problem)
        customer_id = arrival.customer_id
        if customer_id is None:
            return self._quarantine(arrival, digest, received_at, Message.of(N_(
                "files must be put in the customer's folder, inbox/<customer_id>/")))
        if self.contracts.get(customer_id) is None:
            return self._quarantine(arrival, digest, received_at,
                                    _no_such_customer(customer_id, self.contracts))
        # A duplicate is the same content for the same customer and month. The same bytes
        # named for another month are that month's snapshot: a small, stable customer's export
        # can be identical two months running, and that month must not show NO_DATA.
        snapshot_id = f"{customer_id}/{arrival.month}/{digest}"
        if any(p.snapshot_id == snapshot_id for p in self.planned):
            self.publish()  # the same content twice in one batch: settle the first one first
        loaded = self.loaded.get((customer_id, digest, str(arrival.month), arrival.kind))
        if loaded:
            return _already_loaded(workspace, arrival, Path(loaded), con, digest, received_at)
        if arrival.kind == "rma":
            return self._take_rma_log(arrival, digest, received_at)
        if not arrival.month_from_name and self._checked(arrival, digest):
            hold = self.evidence.modification(arrival.name, arrival.month, arrival.modified,
                                              self.contracts.get(customer_id))
            if hold is not None:
                return self._hold(arrival, digest, received_at, hold)
        try:
            plan = plan_inventory_export(arrival.claimed, self.scratch)
        except UnreadableExport as error:
            return self._quarantine(arrival, digest, received_at, error.message)
        target = free_path(workspace.archive / customer_id / str(arrival.month) / arrival.name,
                            {p.target for p in self.planned})
        self.planned.append(_Planned(arrival, plan, snapshot_id, next_receipt(con), digest,
                                     received_at, target, len(self.slots) - 1, before))
        return None

    def _checked(self, arrival: Arrival, digest: str) -> bool:
        """Whether the file is checked against its evidence: not in a rebuild, nor once an
        operator approved these bytes for this month."""
        return self.evidence is not None and self.evidence.applies(
            arrival.customer_id, digest, arrival.month)

    def _held(self, planned: list[_Planned]) -> dict[str, Hold]:
        """The staged exports whose own evidence contradicts their month (evidence.py), by
        snapshot_id: last-seen dates after it, else another month's bytes for a month already
        reported; then serials a spreadsheet damaged."""
        checked = [p for p in planned if self._checked(p.arrival, p.digest)]
        if not checked:
            return {}
        seen = staged_last_seen(self.con)
        damaged = {snapshot_id: found for snapshot_id, *found in run_sql(
            self.con, "intake/damaged_serials.sql",
            snapshot_ids=[p.snapshot_id for p in checked],
            customer_ids=[p.arrival.customer_id for p in checked]).fetchall()}
        held = {}
        for p in checked:
            arrival, evidence = p.arrival, self.evidence
            name, month, customer_id = arrival.name, arrival.month, arrival.customer_id

            def kept(arrival=arrival) -> str:
                return visible(self.workspace.relative(self._quarantine_path(arrival)))

            hold = None
            if p.snapshot_id in seen:
                hold = evidence.last_seen(name, month, seen[p.snapshot_id], customer_id, kept)
            elif evidence.reported(customer_id, month) and (
                    other := self._other_month(p, planned)):
                hold = evidence.same_content(name, month, other, customer_id, kept)
            if hold is None and p.snapshot_id in damaged:
                hold = damaged_serials(*damaged[p.snapshot_id], customer_id)
            if hold is not None:
                held[p.snapshot_id] = hold
        return held

    def _other_month(self, p: _Planned, planned: list[_Planned]) -> Month | None:
        """The latest other month whose snapshot of the customer has these bytes."""
        customer_id, month = p.arrival.customer_id, str(p.arrival.month)
        months = [m for c, digest, m, kind in self.loaded
                  if (c, digest, kind) == (customer_id, p.digest, "inventory") and m != month]
        months += [str(o.arrival.month) for o in planned if o.digest == p.digest
                   and o.arrival.customer_id == customer_id and str(o.arrival.month) != month]
        return Month.parse(max(months)) if months else None

    def _put_back(self, p: _Planned) -> IntakeResult:
        """A file that changed while it was read is still being written (by a copy that
        paused longer than the settle time): nothing of it is kept, and it goes back to the
        inbox for the next run, so its count and its SHA-256 are those of the whole file."""
        run_sql(self.con, "intake/unstage_snapshot.sql", snapshot_id=p.snapshot_id)
        folder = self.workspace.inbox / p.arrival.customer_id
        move(p.arrival.claimed, free_path(folder / p.arrival.name))
        return IntakeResult(p.arrival.shown, p.arrival.customer_id, "waiting",
                            "still being written (it changed while it was read): the next "
                            "run takes it")

    def _take_rma_log(self, arrival: Arrival, digest: str, received_at: datetime
                      ) -> IntakeResult:
        con, workspace, customer_id = self.con, self.workspace, arrival.customer_id
        try:
            parsed = read_rma_log(arrival.claimed)
        except UnreadableExport as error:
            return self._quarantine(arrival, digest, received_at, error.message)
        target = free_path(workspace.archive / customer_id / "rma" / arrival.name)
        rejected = workspace.quarantine / customer_id / f"{target.name}.rejected.csv"
        findings = publish_rma_log(
            con, self.gate, parsed.rows, customer_id, digest, str(arrival.month),
            arrival.upload_name,
            rejected, lambda: _log_intake(con, arrival, next_receipt(con), digest, received_at,
                                          "loaded", workspace.relative(target), None))
        self.loaded[(customer_id, digest, str(arrival.month), arrival.kind)] = \
            workspace.relative(target)
        move(arrival.claimed, target)
        return IntakeResult(arrival.shown, customer_id, "loaded",
                            english("RMA log, %(num)s row", "RMA log, %(num)s rows",
                                    len(parsed.rows)) + _notes(workspace, findings, rejected),
                            str(arrival.month), arrival.kind)

    def publish(self) -> None:
        """Read, audit and publish the planned exports (one transaction), then archive them."""
        if not self.planned:
            return
        planned, self.planned = self.planned, []
        con, workspace = self.con, self.workspace
        with timed("intake"):
            rows, unreadable = stage_exports(con, [(p.snapshot_id, p.plan) for p in planned])
        shutil.rmtree(self.scratch)  # the converted copies are staged now
        self.scratch.mkdir()
        changed = {p.slot for p in planned if p.snapshot_id not in unreadable
                   and signature(p.arrival.claimed) != p.signature}
        for p in planned:
            if p.snapshot_id in unreadable:
                self._report(p.slot, self._quarantine(p.arrival, p.digest, p.received_at,
                                                      unreadable[p.snapshot_id].message))
            elif p.slot in changed:
                self._report(p.slot, self._put_back(p))
        planned = [p for p in planned if p.snapshot_id not in unreadable
                   and p.slot not in changed]
        held = self._held(planned)
        for p in planned:
            if p.snapshot_id in held:
                run_sql(con, "intake/unstage_snapshot.sql", snapshot_id=p.snapshot_id)
                self._report(p.slot, self._hold(p.arrival, p.digest, p.received_at,
                                                held[p.snapshot_id]))
        planned = [p for p in planned if p.snapshot_id not in held]
        snapshots = {p.snapshot_id: StagedSnapshot(
            p.snapshot_id, p.arrival.customer_id, str(p.arrival.month), p.receipt,
            p.received_at, "lens_csv", p.arrival.upload_name, p.digest, rows[p.snapshot_id],
            workspace.quarantine / p.arrival.customer_id / f"{p.target.name}.rejected.csv")
            for p in planned}
        for snapshot in snapshots.values():
            self.batch.add(snapshot)

        records = [{"receipt_seq": p.receipt, "customer_id": p.arrival.customer_id,
                    "file_name": p.arrival.upload_name, "sha256": p.digest, "kind": p.arrival.kind,
                    "month": str(p.arrival.month), "received_at": p.received_at,
                    "outcome": "loaded", "stored_path": workspace.relative(p.target),
                    "reason": None, "reason_message": None} for p in planned]
        findings = self.batch.publish(lambda: load_frame(con, "intake/log_intakes.sql",
                                                         pd.DataFrame(records)))
        for record in records:
            self.loaded[(record["customer_id"], record["sha256"], record["month"],
                         record["kind"])] = record["stored_path"]
        for p in planned:
            move(p.arrival.claimed, p.target)
            snapshot = snapshots[p.snapshot_id]
            self._report(p.slot, IntakeResult(
                p.arrival.shown, p.arrival.customer_id, "loaded",
                english("inventory for %(month)s, %(num)s row",
                        "inventory for %(month)s, %(num)s rows", snapshot.row_count,
                        month=p.arrival.month)
                + p.arrival.month_note
                + _notes(workspace, findings[p.snapshot_id], snapshot.rejected_file),
                str(p.arrival.month), p.arrival.kind, p.arrival.month_from_name))


def _no_such_customer(folder: str, contracts: Contracts) -> Message:
    """Why a file in inbox/<folder>/ is rejected when no customer has that id: with the one
    id the folder is a slip of the hand away from (core/nearest.py), named as the fix."""
    meant = nearest(folder, (c.id for c in contracts.customers))
    if meant is None:
        return Message.of(N_(
            "there is no customer '%(customer)s' in contracts.yaml; add the contract, or put "
            "the file in the right customer's folder"), customer=visible(folder))
    return Message.of(N_(
        "there is no customer '%(customer)s' in contracts.yaml; did you mean '%(meant)s'? "
        "Put the file into inbox/%(meant)s/, or add the contract"),
        customer=visible(folder), meant=meant)


def _notes(workspace: Workspace, findings: list, rejected: Path) -> str:
    notes = [f.message for f in findings if not f.passed]
    if rejected.exists():
        notes.append(f"rejected rows listed in {visible(workspace.relative(rejected))}")
    return "".join(f"; {note}" for note in notes)


def _already_loaded(workspace: Workspace, arrival: Arrival, recorded: Path, con, digest: str,
                    received_at: datetime) -> IntakeResult:
    recorded_path = workspace.home / recorded
    if not recorded_path.exists():
        # The run that loaded it stopped before archiving it: finish that move.
        move(arrival.claimed, recorded_path)
        return IntakeResult(arrival.shown, arrival.customer_id, "loaded",
                            f"was loaded by an interrupted run; archived as "
                            f"{visible(str(recorded))}")
    target = free_path(workspace.archive / arrival.customer_id / "duplicates" / arrival.name)
    move(arrival.claimed, target)
    with transaction(con):
        _log_intake(con, arrival, next_receipt(con), digest, received_at, "duplicate",
                    workspace.relative(target),
                    Message.of(N_("the same content was already taken in; nothing changed")))
    return IntakeResult(arrival.shown, arrival.customer_id, "duplicate",
                        f"same content as an earlier file for {arrival.month}, archived as "
                        f"{visible(workspace.relative(target))}")


def _log_intake(con, arrival: Arrival, receipt: int, digest: str, received_at: datetime,
                outcome: str, stored_path: str, reason: Message | None) -> None:
    run_sql(con, "intake/log_intake.sql", receipt_seq=receipt, customer_id=arrival.customer_id,
            file_name=arrival.upload_name, sha256=digest, kind=arrival.kind,
            month=str(arrival.month),
            received_at=received_at, outcome=outcome, stored_path=stored_path,
            reason=None if reason is None else str(reason),
            reason_message=None if reason is None else reason.to_json())


def reason_file(formats: Formats, shown: str, customer_id: str | None, received_at: datetime,
                digest: str, reason: Message) -> str:
    """What a quarantined (or held) file's `.reason.txt` says, in the partner's language."""
    _ = formats.gettext
    hold = Hold.from_reason(reason)
    lines = [(_("File:"), shown),
             (_("Customer:"), visible(customer_id or _("(none: not in a customer folder)"))),
             (_("Received:"), f"{received_at:%Y-%m-%d %H:%M:%S} UTC"),
             (_("SHA-256:"), digest or _("(not read)")),
             (_("Problem:"), (hold.problem if hold else reason).shown(formats)),
             (_("What to do:"), hold.what_to_do.shown(formats) if hold else
              _("correct the file and put it into inbox/<customer_id>/ again; this copy stays "
                "here for reference."))]
    width = max(len(label) for label, _value in lines) + 1
    return "".join(f"{label:<{width}}{value}\n" for label, value in lines)


