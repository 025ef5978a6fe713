"""`python -m pipelines catalog`: the list a partner extends config/catalog.csv from.

Every model in the warehouse's month snapshots that the catalog does not know (unclassified:
never counted, and a quality finding), and separately what it classes `not_counted`, so a
partner can check that nothing it should count hides there. Most devices first, as the
partner's exports spell the model; `--csv` writes the same lists to a file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass
from pathlib import Path

from pipelines.core.config import Config
from pipelines.core.files import write_atomically
from pipelines.core.safe_csv import neutralise
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import (
    open_warehouse,
    run_sql,
    transaction,
    warehouse_exists,
)


@dataclass(frozen=True)
class ModelSeen:
    category: str  # unclassified | not_counted
    model: str
    devices: int  # in each customer's latest month holding the model, summed
    customers: int
    months: int
    first_month: str
    last_month: str


CSV_COLUMNS = ("category", "model", "devices", "customers", "months", "first_month",
               "last_month")


def models_to_review(config: Config) -> list[ModelSeen]:
    """Classified with the catalog as it is now (shipped + config/catalog.csv)."""
    if not warehouse_exists(config.workspace):
        return []
    with open_warehouse(config.workspace) as con:
        with transaction(con):
            store_catalog(con, config.catalog)
        return [ModelSeen(*row) for row in run_sql(con, "reconcile/catalog_models.sql").fetchall()]


def describe(models: list[ModelSeen]) -> str:
    unknown = [m for m in models if m.category == "unclassified"]
    not_counted = [m for m in models if m.category == "not_counted"]
    lines = [f"Models the catalog does not know ({len(unknown)}): never counted; add each "
             f"to config/catalog.csv (model,category,end_of_service)" if unknown
             else "Models the catalog does not know: none"]
    lines += _table(unknown)
    lines.append(f"Not counted: accessories, software and other makers' products "
                 f"({len(not_counted)})" if not_counted else "Not counted: none")
    lines += _table(not_counted)
    return "\n".join(lines)


def _table(models: list[ModelSeen]) -> list[str]:
    if not models:
        return []
    rows = [f"  {'devices':>7}  {'customers':>9}  {'months':<22}  model"]
    for m in models:
        span = m.first_month if m.months == 1 else f"{m.first_month}..{m.last_month} ({m.months})"
        rows.append(f"  {m.devices:>7}  {m.customers:>9}  {span:<22}  {m.model}")
    return rows


def write_csv(path: Path, models: list[ModelSeen]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for m in models:
        category, model, *numbers = astuple(m)
        writer.writerow([category, neutralise(model), *numbers])
    write_atomically(path, buffer.getvalue())
