"""The pipeline's steps as whole jobs, shared by the CLI, the demo and the Airflow DAGs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.catalog import load_catalog
from pipelines.config import Config
from pipelines.errors import ConfigError
from pipelines.intake import IntakeResult, take_inbox
from pipelines.months import Month
from pipelines.reconcile import MonthResult, reconcile_month
from pipelines.result_files import write_month_results

log = logging.getLogger("polyrecon")


@dataclass(frozen=True)
class MonthlyRun:
    intake: list[IntakeResult]
    result: MonthResult
    written: list[Path]


def check_customer(config: Config, customer_id: str | None) -> None:
    if customer_id is not None and config.contracts.get(customer_id) is None:
        raise ConfigError(f"--customer: there is no customer '{customer_id}' in contracts.yaml")


def ingest(config: Config, customer_id: str | None = None) -> list[IntakeResult]:
    check_customer(config, customer_id)
    return take_inbox(config.workspace, config.contracts, customer_id)


def reconcile(config: Config, month: Month) -> tuple[MonthResult, list[Path]]:
    catalog = load_catalog(config.workspace.catalog_file)
    result = reconcile_month(config, month, catalog)
    return result, write_month_results(config.workspace, result)


def run_month(config: Config, month: Month, customer_id: str | None = None) -> MonthlyRun:
    """The monthly job: take in the inbox, then reconcile the month and write its files.

    With `customer_id` only that customer's inbox is taken in; the month is still reconciled
    for every customer, so reconciliation.csv is always whole.
    """
    intake = ingest(config, customer_id)
    result, written = reconcile(config, month)
    return MonthlyRun(intake, result, written)
