"""Pulling each customer's inventory from the Poly Lens API into the raw layer.

Pages stream to a raw file as they arrive (one page in memory at a time); only when the pull is
complete — as many devices as Lens's `totalCount` — is the file loaded as the customer's
snapshot, in one transaction, and kept in archive/<customer>/<month>/ like an uploaded export.
A failed pull leaves the warehouse as it was (its partial file is removed, whatever ended it).
One customer's failure never stops the others: whatever Lens answers, the client ends the pull
as a LensError, within the bounds its module docstring lists, and the failure is recorded. Loading
from a file rather than page by page keeps memory
flat: DuckDB holds an open transaction's appended rows in memory.

A pull shows the inventory as it is now, so it counts for month M only while today (UTC) lies
in M or within `lens.pull_window_days` after M's last day. Within one run the inbox is taken
first and the API pulled after it: the pull, being the later receipt, is the month's snapshot.
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines.core.config import Config, Customer
from pipelines.core.i18n import english
from pipelines.core.months import Month
from pipelines.core.progress import track
from pipelines.core.workspace import Workspace
from pipelines.ingest_lens import RAW_COLUMNS, device_row
from pipelines.lens_api.client import (
    DEFAULT_RETRY,
    LensClient,
    LensCredentials,
    LensError,
    RetryPolicy,
)
from pipelines.raw.publish import SnapshotBatch, StagedSnapshot, stage_pulled_csv
from pipelines.raw.quality import QualityGate
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import (
    next_receipt,
    open_warehouse,
    run_sql,
    transaction,
)

log = logging.getLogger("polyrecon")


@dataclass(frozen=True)
class PullResult:
    customer_id: str
    tenant_id: str
    outcome: str  # loaded | failed
    devices: int
    detail: str


def pull_window_open(month: Month, today: date, window_days: int) -> bool:
    return month.first_day <= today <= month.last_day + timedelta(days=window_days)


def pull_lens(config: Config, month: Month, customer_id: str | None = None,
              credentials: LensCredentials | None = None, today: date | None = None,
              retry: RetryPolicy = DEFAULT_RETRY) -> list[PullResult]:
    customers = [c for c in config.contracts.customers
                 if c.lens_tenant_id and customer_id in (None, c.id)]
    if not customers:
        return []
    settings = config.partner.lens
    today = today or datetime.now(UTC).date()
    if not pull_window_open(month, today, settings.pull_window_days):
        log.info("Lens API: %s is outside the pull window (it closed %s days after the month); "
                 "pulling nothing, the stored snapshots stand", month, settings.pull_window_days)
        return []
    credentials = credentials or LensCredentials.from_env()
    if credentials is None:
        reason = ("LENS_CLIENT_ID and LENS_CLIENT_SECRET are not set: no Lens API pull "
                  "(set them, or upload Lens exports to the inbox)")
        return [PullResult(c.id, c.lens_tenant_id, "failed", 0, reason) for c in customers]
    client = LensClient(settings.token_url, settings.graphql_url, credentials, retry)
    results = []
    try:
        # Loading a pull only streams rows into the file: a small cache, and no row-order
        # bookkeeping (rows carry their number), keep memory flat.
        with open_warehouse(config.workspace, memory_limit="128MB") as con:
            con.execute("SET preserve_insertion_order = false")
            with transaction(con):  # the audit classifies models
                store_catalog(con, config.catalog)
            for customer in track(customers, f"Pulling Lens inventories for {month}"):
                result = _pull_customer(con, client, config.workspace, customer, month,
                                        settings.page_size)
                log.info("Lens %s %s (tenant %s): %s", result.outcome, result.customer_id,
                         result.tenant_id, result.detail)
                results.append(result)
    finally:
        client.close()
    return results


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def pull_file_name(tenant_id: str, started: datetime, receipt: int) -> str:
    return f"lens-api-{tenant_id}-{started:%Y%m%dT%H%M%SZ}-{receipt}.csv"


def _pull_customer(con, client: LensClient, workspace: Workspace, customer: Customer,
                   month: Month, page_size: int) -> PullResult:
    started = _now()
    receipt = next_receipt(con)
    name = pull_file_name(customer.lens_tenant_id, started, receipt)
    final = workspace.archive / customer.id / str(month) / name
    partial = final.with_name(f".{name}.partial")
    try:
        devices = _download(client, customer.lens_tenant_id, page_size, partial)
        findings = load_pull_file(con, workspace, customer, month, partial, name, receipt,
                                  started, devices, archive_to=final)
    except LensError as error:
        with transaction(con):
            _log_pull(con, customer, month, started, "failed", 0, None, str(error))
        return PullResult(customer.id, customer.lens_tenant_id, "failed", 0,
                          f"pull failed, nothing stored: {error}")
    finally:
        # However the pull ended, no partial file stays (a complete one was renamed).
        partial.unlink(missing_ok=True)
    notes = "".join(f"; {f.message}" for f in findings if not f.passed)
    return PullResult(customer.id, customer.lens_tenant_id, "loaded", devices,
                      english("inventory for %(month)s, %(num)s device (kept as %(path)s)",
                              "inventory for %(month)s, %(num)s devices (kept as %(path)s)",
                              devices, month=month, path=workspace.relative(final)) + notes)


def load_pull_file(con, workspace: Workspace, customer: Customer, month: Month, path: Path,
                   name: str, receipt: int, started: datetime, devices: int,
                   archive_to: Path | None = None) -> list:
    """Load a complete pull's raw file as the month's snapshot and audit it, in one
    transaction (`rebuild` loads the pull files kept in archive/ the same way).

    `archive_to`: the file is renamed there before the commit, so a committed snapshot always
    has its file in archive/ (a crash in between leaves a file whose snapshot `rebuild` skips
    when the old warehouse is readable, and a later pull supersedes)."""
    rejected = workspace.quarantine / customer.id / f"{name}.rejected.csv"
    snapshot_id = f"{customer.id}/{month}/lens-api-{receipt}"
    stage_pulled_csv(con, snapshot_id, path)
    batch = SnapshotBatch(con, QualityGate.shared())
    batch.add(StagedSnapshot(snapshot_id, customer.id, str(month), receipt, started, "lens_api",
                             f"Lens tenant {customer.lens_tenant_id}", None, devices, rejected))

    def bookkeeping() -> None:
        _log_pull(con, customer, month, started, "loaded", devices, snapshot_id, None)
        if archive_to is not None:
            os.replace(path, archive_to)

    return batch.publish(bookkeeping)[snapshot_id]


def _download(client: LensClient, tenant_id: str, page_size: int, target: Path) -> int:
    """Every page into `target` as CSV with the raw columns; the device count, once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    devices, total = 0, None
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RAW_COLUMNS)
        writer.writeheader()
        for page in client.device_pages(tenant_id, page_size):
            writer.writerows(device_row(devices + i + 1, node)
                             for i, node in enumerate(page.nodes))
            devices, total = devices + len(page.nodes), page.total_count
    if devices != total:
        raise LensError(f"received {devices} devices but Lens reported a totalCount of "
                        f"{total}; the inventory is incomplete")
    return devices


def _log_pull(con, customer: Customer, month: Month, started: datetime, outcome: str,
              devices: int, snapshot_id: str | None, error: str | None) -> None:
    run_sql(con, "lens_api/log_lens_pull.sql", customer_id=customer.id,
            tenant_id=customer.lens_tenant_id, month=str(month), started_at=started,
            finished_at=_now(), outcome=outcome, devices=devices, snapshot_id=snapshot_id,
            error=error)
