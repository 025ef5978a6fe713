"""The pipeline's steps as whole jobs, shared by the CLI, the demo and the Airflow DAGs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.api_intake import PullResult, pull_lens
from pipelines.catalog import load_catalog
from pipelines.config import Config
from pipelines.errors import ConfigError
from pipelines.intake import IntakeResult, take_inbox
from pipelines.mail import MailOutcome, send_month
from pipelines.months import Month
from pipelines.reconcile import MonthResult, reconcile_month
from pipelines.render import RenderOutcome, render_month
from pipelines.result_files import write_month_results

log = logging.getLogger("polyrecon")


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


def ingest(config: Config, month: Month, customer_id: str | None = None) -> Intake:
    """The inbox first, then the Lens API pulls for `month` (the later receipt wins)."""
    check_customer(config, customer_id)
    catalog = load_catalog(config.workspace.catalog_file)
    files = take_inbox(config.workspace, config.contracts, catalog, customer_id)
    return Intake(files, pull_lens(config, month, customer_id, catalog=catalog))


def reconcile(config: Config, month: Month) -> tuple[MonthResult, list[Path]]:
    catalog = load_catalog(config.workspace.catalog_file)
    result = reconcile_month(config, month, catalog)
    return result, write_month_results(config.workspace, result)


def report(config: Config, month: Month, customer_id: str | None = None,
           result: MonthResult | None = None) -> RenderOutcome:
    check_customer(config, customer_id)
    return render_month(config, month, customer_id, result)


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
    mail = send_month(config, result, intake.files, resend)
    return MonthlyRun(intake, result, written, reports, mail)
