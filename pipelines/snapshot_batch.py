"""Publishing inventory snapshots: staged, audited, then published together (write-audit-publish).

Rows are staged first (export_staging.py for uploads, `stage_pulled_csv` for Lens pulls) into
the connection's temporary `staged_inventory`. `SnapshotBatch.publish` audits every staged
snapshot and moves them into the raw layer in one transaction: a batch is there
whole or not at all, and a crash leaves only the staging table behind, which dies with the
connection. One transaction and one GX validation per batch, not per file, is what keeps a
partner with a thousand small exports fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import pandas as pd

from pipelines.audit import audit_staged_snapshots
from pipelines.months import Month
from pipelines.quality import MAC_PATTERN, SERIAL_PATTERN, Finding, QualityGate
from pipelines.stage_clock import timed
from pipelines.warehouse import fetch_value, load_frame, run_sql, transaction


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
    run_sql(con, "stage_inventory_csv.sql", snapshot_id=snapshot_id, path=str(path))


class SnapshotBatch:
    def __init__(self, con, gate: QualityGate):
        self._con, self._gate = con, gate
        self.snapshots: list[StagedSnapshot] = []

    def add(self, snapshot: StagedSnapshot) -> None:
        """A snapshot whose rows are staged under its snapshot_id."""
        self.snapshots.append(snapshot)

    def publish(self, also: Callable[[], None] = lambda: None) -> dict[str, list[Finding]]:
        """Audit and publish the staged snapshots in one transaction, together with `also`
        (the caller's own bookkeeping); the findings per snapshot_id."""
        if not self.snapshots:
            return {}
        con = self._con
        try:
            findings = self._publish(also)
        except BaseException:
            run_sql(con, "clear_staging.sql")  # nothing of a failed batch may join the next
            raise
        finally:
            self.snapshots = []
        return findings

    def _publish(self, also: Callable[[], None]) -> dict[str, list[Finding]]:
        con = self._con
        with transaction(con):
            load_frame(con, "stage_snapshots.sql", pd.DataFrame([{
                **vars(s), "previous_month": str(Month.parse(s.month).plus(-1))}
                for s in self.snapshots]).drop(columns=["rejected_file"]))
            with timed("validation"):
                run_sql(con, "key_staged_rows.sql", serial_pattern=SERIAL_PATTERN,
                        mac_pattern=MAC_PATTERN)
                findings = audit_staged_snapshots(con, self._gate, self.snapshots)
            with timed("load"):
                if fetch_value(con, "staged_reloads.sql"):
                    run_sql(con, "delete_staged_partitions.sql")
                run_sql(con, "publish_staged_snapshots.sql")
                also()
        return findings
