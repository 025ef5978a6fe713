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

A customer is pulled with its own credential when contracts.yaml names one (`lens_credential`),
else with the partner's; the tenant's region, as Lens names it, is kept with the pull (its row in
lens_pulls, and its file's name, so `rebuild` keeps it too).
"""
from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping
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
    CredentialLookup,
    LensClient,
    LensCredentials,
    LensError,
    RetryPolicy,
    credential_label,
    credential_source,
    env_names,
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
# A region id as a pull file's name may carry it (Lens names regions EU-1, US-1); another one is
# kept in the warehouse only.
_REGION_IN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


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
              retry: RetryPolicy = DEFAULT_RETRY,
              lookup: CredentialLookup = LensCredentials.from_env,
              blocked: Mapping[str, str] | None = None) -> list[PullResult]:
    """Each customer's pull (one customer's with `customer_id`), with its own credential or
    the partner's: `credentials` when given, else `lookup(None)`; a customer's own from
    `lookup(name)`. A customer in `blocked` is not pulled: its pull fails with the reason given
    (the DAG's tenant check found its tenant not visible), the others go on."""
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
    blocked = blocked or {}
    clients: dict[str | None, LensClient | None] = {}
    results = []
    try:
        for name in dict.fromkeys(c.lens_credential for c in customers):
            found = credentials if name is None and credentials else lookup(name)
            clients[name] = (LensClient(settings.token_url, settings.graphql_url, found, retry)
                             if found else None)
        results += [PullResult(c.id, c.lens_tenant_id, "failed", 0, _not_set(c.lens_credential))
                    for c in customers if clients[c.lens_credential] is None]
        pulled = [c for c in customers if clients[c.lens_credential] is not None]
        if not pulled:
            return results
        # Loading a pull only streams rows into the file: a small cache, and no row-order
        # bookkeeping (rows carry their number), keep memory flat.
        with open_warehouse(config.workspace, memory_limit="128MB") as con:
            con.execute("SET preserve_insertion_order = false")
            with transaction(con):  # the audit classifies models
                store_catalog(con, config.catalog)
            for customer in track(pulled, f"Pulling Lens inventories for {month}"):
                if customer.id in blocked:
                    result = _refuse(con, customer, month, blocked[customer.id])
                else:
                    result = _pull_customer(con, clients[customer.lens_credential],
                                            config.workspace, customer, month,
                                            settings.page_size)
                log.info("Lens %s %s (tenant %s): %s", result.outcome, result.customer_id,
                         result.tenant_id, result.detail)
                results.append(result)
    finally:
        for client in clients.values():
            if client is not None:
                client.close()
    return sorted(results, key=lambda r: [c.id for c in customers].index(r.customer_id))


def _not_set(name: str | None) -> str:
    client_id, secret = env_names(name)
    if name is None:
        return (f"{client_id} and {secret} are not set: no Lens API pull (set them, or in "
                f"Airflow the connection polylens_api; or upload Lens exports to the inbox)")
    return (f"{credential_label(name)} of this customer (contracts.yaml lens_credential) is "
            f"not set: no Lens API pull (set {credential_source(name)}, or upload Lens exports "
            f"to the inbox)")


def _refuse(con, customer: Customer, month: Month, reason: str) -> PullResult:
    """A pull not attempted for a reason known before (its tenant is not visible): recorded as
    a failed pull, as it would have failed."""
    started = _now()
    with transaction(con):
        _log_pull(con, customer, month, started, "failed", 0, None, reason, None)
    return PullResult(customer.id, customer.lens_tenant_id, "failed", 0,
                      f"not pulled, nothing stored: {reason}")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def pull_file_name(tenant_id: str, started: datetime, receipt: int, region: str | None = None
                   ) -> str:
    """`lens-api-<tenant>-<start>-<receipt>.csv`, with `-region-<region>` before `.csv` when
    Lens named the tenant's region (and the name is one a file name may hold)."""
    shown = f"-region-{region}" if region and _REGION_IN_NAME.fullmatch(region) else ""
    return f"lens-api-{tenant_id}-{started:%Y%m%dT%H%M%SZ}-{receipt}{shown}.csv"


def _pull_customer(con, client: LensClient, workspace: Workspace, customer: Customer,
                   month: Month, page_size: int) -> PullResult:
    started = _now()
    receipt = next_receipt(con)
    partial = (workspace.archive / customer.id / str(month)
               / f".{pull_file_name(customer.lens_tenant_id, started, receipt)}.partial")
    try:
        devices, region = _download(client, customer.lens_tenant_id, page_size, partial)
        name = pull_file_name(customer.lens_tenant_id, started, receipt, region)
        final = partial.with_name(name)
        findings = load_pull_file(con, workspace, customer, month, partial, name, receipt,
                                  started, devices, archive_to=final, region=region)
    except LensError as error:
        with transaction(con):
            _log_pull(con, customer, month, started, "failed", 0, None, str(error), None)
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
                   archive_to: Path | None = None, region: str | None = None) -> list:
    """Load a complete pull's raw file as the month's snapshot and audit it, in one
    transaction (`rebuild` loads the pull files kept in archive/ the same way). `region`: the
    tenant's, as Lens named it.

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
        _log_pull(con, customer, month, started, "loaded", devices, snapshot_id, None, region)
        if archive_to is not None:
            os.replace(path, archive_to)

    return batch.publish(bookkeeping)[snapshot_id]


def _download(client: LensClient, tenant_id: str, page_size: int, target: Path
              ) -> tuple[int, str | None]:
    """Every page into `target` as CSV with the raw columns; the device count, once complete,
    and the tenant's region."""
    target.parent.mkdir(parents=True, exist_ok=True)
    devices, total, region = 0, None, None
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RAW_COLUMNS)
        writer.writeheader()
        for page in client.device_pages(tenant_id, page_size):
            writer.writerows(device_row(devices + i + 1, node)
                             for i, node in enumerate(page.nodes))
            devices, total = devices + len(page.nodes), page.total_count
            region = region or page.region
    if devices != total:
        raise LensError(f"received {devices} devices but Lens reported a totalCount of "
                        f"{total}; the inventory is incomplete")
    return devices, region


def _log_pull(con, customer: Customer, month: Month, started: datetime, outcome: str,
              devices: int, snapshot_id: str | None, error: str | None, region: str | None
              ) -> None:
    run_sql(con, "lens_api/log_lens_pull.sql", customer_id=customer.id,
            tenant_id=customer.lens_tenant_id, month=str(month), started_at=started,
            finished_at=_now(), outcome=outcome, devices=devices, snapshot_id=snapshot_id,
            error=error, region=region)
