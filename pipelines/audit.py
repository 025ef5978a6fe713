"""Audit a just-written snapshot or RMA log inside its load transaction (write-audit-publish):
run the quality suites on it, store the findings, and hand the partner the rejected rows."""
from __future__ import annotations

import csv
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from pipelines.months import Month

AUDIT_CHUNK_VECTORS = 50  # about 100,000 rows per validated chunk
from pipelines.quality import Finding, QualityGate
from pipelines.warehouse import SnapshotLoad, fetch_value, load_frame, run_sql


def audit_snapshot(con, gate: QualityGate, load: SnapshotLoad, rejected_file: Path
                   ) -> list[Finding]:
    devices = fetch_value(con, "snapshot_device_count.sql", snapshot_id=load.snapshot_id)
    previous = fetch_value(con, "previous_month_devices.sql", customer_id=load.customer_id,
                           month=str(Month.parse(load.month).plus(-1)))
    findings = gate.check_inventory(
        _chunks(run_sql(con, "audit_inventory.sql", snapshot_id=load.snapshot_id)), devices,
        previous or None)
    _store(con, load.snapshot_id, load.customer_id, load.month, load.source_name, findings)
    _write_rejected(run_sql(con, "rejected_inventory_rows.sql",
                            snapshot_id=load.snapshot_id).df(), rejected_file)
    return findings


def audit_rma_log(con, gate: QualityGate, customer_id: str, sha256: str, month: str,
                  file_name: str, rejected_file: Path, today: date | None = None
                  ) -> list[Finding]:
    today = today or datetime.now(timezone.utc).date()
    findings = gate.check_rma(_chunks(run_sql(con, "audit_rma.sql", customer_id=customer_id,
                                              sha256=sha256, today=today)))
    _store(con, f"rma:{customer_id}/{sha256}", customer_id, month, file_name, findings)
    _write_rejected(run_sql(con, "rejected_rma_rows.sql", customer_id=customer_id,
                            sha256=sha256).df(), rejected_file)
    return findings


def _chunks(result, vectors: int = AUDIT_CHUNK_VECTORS) -> Iterator[pd.DataFrame]:
    """A query's rows as DataFrames of at most `vectors` × 2048 rows; at least one, even empty
    (so every expectation reports)."""
    first = True
    while True:
        chunk = result.fetch_df_chunk(vectors)
        if chunk.empty and not first:
            return
        yield chunk
        if chunk.empty:
            return
        first = False


def _store(con, subject: str, customer_id: str, month: str, source_name: str,
           findings: list[Finding]) -> None:
    frame = pd.DataFrame([asdict(f) for f in findings],
                         columns=["check", "severity", "passed", "checked", "failing",
                                  "message"])
    load_frame(con, "store_quality_checks.sql", frame, subject=subject,
               customer_id=customer_id, month=month, source_name=source_name)


def _write_rejected(rows: pd.DataFrame, target: Path) -> None:
    """`<file>.rejected.csv` beside the quarantined files: the rows that do not count, why."""
    from pipelines.safe_csv import neutralise

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
