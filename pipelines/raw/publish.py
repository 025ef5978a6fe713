"""Write-audit-publish into the raw layer: one shape for both sources (the uploads intake/
takes, the pulls lens_api/ makes), and for inventory snapshots and RMA logs alike.

Write: inventory rows are staged first (intake/staging.py for uploads, `stage_pulled_csv` for
Lens pulls) into the connection's temporary `staged_inventory`; an RMA log's rows are written
into its table inside the transaction that audits them. Audit: the warehouse's SQL rules
measure them, the GX suites (quality.py) judge the measurements, the findings are stored and
the partner gets the rejected rows. Publish: in the same transaction, together with the
caller's bookkeeping (the intake or pull record), so a file's rows are there whole or not at
all, and a crash leaves at most the staging table behind, which dies with the connection. One
transaction and one GX validation per batch of snapshots, not per file, is what keeps a partner
with a thousand small exports fast.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from pipelines.core.months import Month
from pipelines.core.safe_csv import neutralise
from pipelines.core.timers import timed
from pipelines.raw.quality import (
    MAC_PATTERN,
    SERIAL_PATTERN,
    SUSPECT_DROP,
    SUSPECT_MINIMUM,
    Finding,
    QualityGate,
)
from pipelines.warehouse.connection import fetch_value, load_frame, run_sql, transaction

Bookkeeping = Callable[[], None]


@dataclass(frozen=True)
class StagedSnapshot:
    snapshot_id: str
    customer_id: str
    month: str
    receipt_seq: int
    received_at: datetime
    source: str  # lens_csv | lens_api
    source_name: str  # file name, or the Lens tenant
    sha256: str | None
    row_count: int
    rejected_file: Path  # where the rows that do not count are listed, if there are any


def stage_pulled_csv(con, snapshot_id: str, path: Path) -> None:
    """Stage a Lens pull's raw-layer CSV file (columns as RAW_COLUMNS), read by DuckDB."""
    run_sql(con, "raw/stage_inventory_csv.sql", snapshot_id=snapshot_id, path=str(path))


class SnapshotBatch:
    def __init__(self, con, gate: QualityGate):
        self._con, self._gate = con, gate
        self.snapshots: list[StagedSnapshot] = []

    def add(self, snapshot: StagedSnapshot) -> None:
        """A snapshot whose rows are staged under its snapshot_id."""
        self.snapshots.append(snapshot)

    def publish(self, bookkeeping: Bookkeeping) -> dict[str, list[Finding]]:
        """Audit and publish the staged snapshots in one transaction, together with the
        caller's `bookkeeping`; the findings per snapshot_id."""
        if not self.snapshots:
            return {}
        con = self._con
        try:
            findings = self._publish(bookkeeping)
        except BaseException:
            run_sql(con, "raw/clear_staging.sql")  # nothing of a failed batch may join the next
            raise
        finally:
            self.snapshots = []
        return findings

    def _publish(self, bookkeeping: Bookkeeping) -> dict[str, list[Finding]]:
        con = self._con
        with transaction(con):
            load_frame(con, "raw/stage_snapshots.sql", pd.DataFrame([{
                **vars(s), "previous_month": str(Month.parse(s.month).plus(-1))}
                for s in self.snapshots]).drop(columns=["rejected_file"]))
            with timed("validation"):
                run_sql(con, "raw/key_staged_rows.sql", serial_pattern=SERIAL_PATTERN,
                        mac_pattern=MAC_PATTERN)
                findings = _audit_staged_snapshots(con, self._gate, self.snapshots)
            with timed("load"):
                if fetch_value(con, "raw/staged_reloads.sql"):
                    run_sql(con, "raw/delete_staged_partitions.sql")
                run_sql(con, "raw/publish_staged_snapshots.sql")
                bookkeeping()
        return findings


def _audit_staged_snapshots(con, gate: QualityGate, snapshots: list[StagedSnapshot]
                            ) -> dict[str, list[Finding]]:
    """Findings per snapshot_id of the batch in `staged_snapshots` / `staged_inventory`."""
    measurements = run_sql(con, "raw/measure_staged_snapshots.sql",
                           suspect_minimum=SUSPECT_MINIMUM, suspect_drop=SUSPECT_DROP).df()
    findings = gate.check_snapshots(measurements)
    _store(con, [(s.snapshot_id, s.customer_id, s.month, s.source_name, findings[s.snapshot_id])
                 for s in snapshots])
    rejected = run_sql(con, "raw/rejected_staged_rows.sql").df()
    for snapshot in snapshots:
        rows = rejected[rejected["snapshot_id"] == snapshot.snapshot_id]
        _write_rejected(rows.drop(columns=["snapshot_id"]), snapshot.rejected_file)
    return findings


def publish_rma_log(con, gate: QualityGate, rows: pd.DataFrame, customer_id: str, sha256: str,
                    month: str, file_name: str, rejected_file: Path, bookkeeping: Bookkeeping,
                    today: date | None = None) -> list[Finding]:
    """Write, audit and publish an RMA log's rows in one transaction with `bookkeeping`."""
    today = today or datetime.now(UTC).date()
    subject = f"rma:{customer_id}/{sha256}"
    with transaction(con):
        bookkeeping()
        load_frame(con, "raw/load_rma_log.sql", rows, sha256=sha256, customer_id=customer_id,
                   file_name=file_name)
        findings = gate.check_rma_logs(run_sql(
            con, "raw/measure_rma_log.sql", subject=subject, customer_id=customer_id,
            sha256=sha256, today=today).df())[subject]
        _store(con, [(subject, customer_id, month, file_name, findings)])
        _write_rejected(run_sql(con, "raw/rejected_rma_rows.sql", customer_id=customer_id,
                                sha256=sha256).df(), rejected_file)
    return findings


def _store(con, subjects: list[tuple[str, str, str, str, list[Finding]]]) -> None:
    frame = pd.DataFrame(  # rows as tuples: asdict() would deep-copy every finding's message
        [(subject, customer_id, month, source_name, f.check, f.severity, f.passed, f.checked,
          f.failing, str(f.message), f.message.to_json())
         for subject, customer_id, month, source_name, findings in subjects for f in findings],
        columns=["subject", "customer_id", "month", "source_name", "check", "severity",
                 "passed", "checked", "failing", "message", "message_json"])
    load_frame(con, "raw/store_quality_checks.sql", frame)


def _write_rejected(rows: pd.DataFrame, target: Path) -> None:
    """`<file>.rejected.csv` beside the quarantined files: the rows that do not count, why."""
    if rows.empty:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Every cell but the row number is the partner's (or names it): neutralised, so a cell
    # like `=HYPERLINK(…)` is text when the file is opened in a spreadsheet.
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(rows.columns)
        for record in rows.astype(object).where(rows.notna(), "").itertuples(index=False,
                                                                                name=None):
            writer.writerow([record[0], *(neutralise(cell) for cell in record[1:])])
