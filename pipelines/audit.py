"""Audit staged snapshots and just-written RMA logs before they are published
(write-audit-publish): measure them with the warehouse's SQL rules, let the GX suites judge the
measurements, store the findings, and hand the partner the rejected rows."""
from __future__ import annotations

import csv
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.quality import SUSPECT_DROP, SUSPECT_MINIMUM, Finding, QualityGate
from pipelines.safe_csv import neutralise
from pipelines.warehouse import load_frame, run_sql

if TYPE_CHECKING:
    from pipelines.snapshot_batch import StagedSnapshot


def audit_staged_snapshots(con, gate: QualityGate, snapshots: list["StagedSnapshot"]
                           ) -> dict[str, list[Finding]]:
    """Findings per snapshot_id of the batch in `staged_snapshots` / `staged_inventory`."""
    measurements = run_sql(con, "measure_staged_snapshots.sql",
                           suspect_minimum=SUSPECT_MINIMUM, suspect_drop=SUSPECT_DROP).df()
    findings = gate.check_snapshots(measurements)
    _store(con, [(s.snapshot_id, s.customer_id, s.month, s.source_name, findings[s.snapshot_id])
                 for s in snapshots])
    rejected = run_sql(con, "rejected_staged_rows.sql").df()
    for snapshot in snapshots:
        rows = rejected[rejected["snapshot_id"] == snapshot.snapshot_id]
        _write_rejected(rows.drop(columns=["snapshot_id"]), snapshot.rejected_file)
    return findings


def audit_rma_log(con, gate: QualityGate, customer_id: str, sha256: str, month: str,
                  file_name: str, rejected_file: Path, today: date | None = None
                  ) -> list[Finding]:
    today = today or datetime.now(timezone.utc).date()
    subject = f"rma:{customer_id}/{sha256}"
    findings = gate.check_rma_logs(run_sql(
        con, "measure_rma_log.sql", subject=subject, customer_id=customer_id, sha256=sha256,
        today=today).df())[subject]
    _store(con, [(subject, customer_id, month, file_name, findings)])
    _write_rejected(run_sql(con, "rejected_rma_rows.sql", customer_id=customer_id,
                            sha256=sha256).df(), rejected_file)
    return findings


def _store(con, subjects: list[tuple[str, str, str, str, list[Finding]]]) -> None:
    frame = pd.DataFrame(
        [{"subject": subject, "customer_id": customer_id, "month": month,
          "source_name": source_name, **asdict(finding)}
         for subject, customer_id, month, source_name, findings in subjects
         for finding in findings],
        columns=["subject", "customer_id", "month", "source_name", "check", "severity",
                 "passed", "checked", "failing", "message"])
    load_frame(con, "store_quality_checks.sql", frame)


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
