"""The pipeline's steps as whole jobs, shared by the CLI, the demo and the Airflow DAGs.

Every job that writes to the workspace holds its lock (run_lock.py) for its whole duration, so
a CLI run and an Airflow task, or two of either, never work on one workspace at once; `wait`
(seconds) lets a job wait for the other instead of failing at once.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.api_intake import PullResult, pull_lens
from pipelines.ingest_lens import LensCredentials
from pipelines.catalog import load_catalog
from pipelines.catalog_gaps import ModelSeen, models_to_review
from pipelines.config import Config
from pipelines.errors import ConfigError
from pipelines.intake import IntakeResult, take_inbox
from pipelines.mail import MailOutcome, send_month
from pipelines.months import Month
from pipelines.reconcile import MonthResult, compute_month, reconcile_month
from pipelines.warehouse import open_warehouse
from pipelines.render import RenderOutcome, render_month
from pipelines.result_files import write_month_results
from pipelines.run_lock import workspace_lock

log = logging.getLogger("polyrecon")


def exclusive(command: str):
    """The job runs holding the workspace lock; it takes a keyword `wait` (seconds)."""
    def wrap(job):
        @functools.wraps(job)
        def locked(config: Config, *args, wait: float = 0, **kwargs):
            with workspace_lock(config.workspace, command, wait):
                return job(config, *args, **kwargs)
        return locked
    return wrap


@dataclass(frozen=True)
class Intake:
    files: list[IntakeResult]
    pulls: list[PullResult]

    @property
    def failed_pulls(self) -> list[PullResult]:
        return [p for p in self.pulls if p.outcome == "failed"]


@dataclass(frozen=True)
class MonthlyRun:
    intake: Intake
    result: MonthResult
    written: list[Path]
    reports: RenderOutcome | None
    mail: MailOutcome | None


def check_customer(config: Config, customer_id: str | None) -> None:
    if customer_id is not None and config.contracts.get(customer_id) is None:
        raise ConfigError(f"--customer: there is no customer '{customer_id}' in contracts.yaml")


@exclusive("ingest")
def ingest(config: Config, month: Month, customer_id: str | None = None) -> Intake:
    """The inbox first, then the Lens API pulls for `month` (the later receipt wins)."""
    check_customer(config, customer_id)
    catalog = load_catalog(config.workspace.catalog_file)
    files = take_inbox(config.workspace, config.contracts, catalog, customer_id)
    return Intake(files, pull_lens(config, month, customer_id, catalog=catalog))


@exclusive("reconcile")
def reconcile(config: Config, month: Month) -> tuple[MonthResult, list[Path]]:
    catalog = load_catalog(config.workspace.catalog_file)
    result = reconcile_month(config, month, catalog)
    return result, write_month_results(config.workspace, result)


@exclusive("catalog")
def review_catalog(config: Config) -> list[ModelSeen]:
    """The models to review against the catalog (writes only the warehouse's catalog copy)."""
    return models_to_review(config)


@exclusive("report")
def report(config: Config, month: Month, customer_id: str | None = None,
           result: MonthResult | None = None) -> RenderOutcome:
    check_customer(config, customer_id)
    return render_month(config, month, customer_id, result)


@exclusive("run")
def run_month(config: Config, month: Month, customer_id: str | None = None,
              publish: bool = True, resend: bool = False) -> MonthlyRun:
    """The monthly job: take in the inbox and pull Lens, reconcile and write the files, then
    publish: render the reports and send the e-mails (`resend`: again, on purpose).

    With `customer_id` only that customer is taken in and rendered; the month is still
    reconciled for every customer, so reconciliation.csv is always whole.
    """
    intake = ingest(config, month, customer_id)
    result, written = reconcile(config, month)
    if not publish:
        return MonthlyRun(intake, result, written, None, None)
    reports = report(config, month, customer_id, result)
    mail = send_month(config, result, resend, customer_id=customer_id)
    return MonthlyRun(intake, result, written, reports, mail)


# --- the steps one Airflow task each runs (keys and paths in, plain results out) -----------

@exclusive("take_inbox")
def take_inbox_files(config: Config, customer_id: str | None = None) -> list[IntakeResult]:
    check_customer(config, customer_id)
    return take_inbox(config.workspace, config.contracts,
                      load_catalog(config.workspace.catalog_file), customer_id)


@exclusive("pull_lens")
def pull_customer(config: Config, month: Month, customer_id: str,
                  credentials: LensCredentials | None) -> PullResult:
    [result] = pull_lens(config, month, customer_id, credentials=credentials) or [
        PullResult(customer_id, "", "skipped", 0, "outside the pull window: nothing pulled")]
    return result


def lens_customers(config: Config, customer_id: str | None = None) -> list[str]:
    return [c.id for c in config.contracts.customers
            if c.lens_tenant_id and customer_id in (None, c.id)]


def customers_of_month(config: Config, month: Month, customer_id: str | None = None
                       ) -> list[str]:
    return [c.id for c in config.contracts.customers
            if c.term.covers(month) and customer_id in (None, c.id)]


@exclusive("send")
def send(config: Config, month: Month, resend: bool = False, kinds: set[str] | None = None,
         login: tuple[str, str] | None = None) -> MailOutcome:
    with open_warehouse(config.workspace, read_only=True) as con:
        result = compute_month(con, config, month)
    return send_month(config, result, resend, kinds, login)


@exclusive("refresh")
def refresh_after_uploads(config: Config, intake: list[IntakeResult]) -> list[Path]:
    """Re-reconcile each month that got a new snapshot and re-render its customers' reports."""
    affected: dict[str, set[str]] = {}
    for item in intake:
        if item.outcome == "loaded" and item.kind == "inventory" and item.month:
            affected.setdefault(item.month, set()).add(item.customer_id)
    written: list[Path] = []
    for month_text, customer_ids in sorted(affected.items()):
        month = Month.parse(month_text)
        result, files = reconcile(config, month)
        written += files
        for customer_id in sorted(customer_ids & {r.customer_id for r in result.rows}):
            written += report(config, month, customer_id, result).written
    return written


@exclusive("send")
def send_rejection_notices(config: Config, intake: list[IntakeResult]) -> int:
    """The partner's notice of each quarantined upload; returns how many were sent."""
    from datetime import datetime, timezone

    if not any(item.outcome == "quarantined" for item in intake):
        return 0
    month = Month.of(datetime.now(timezone.utc).date())
    return send(config, month, kinds={"file_rejected"}).sent
