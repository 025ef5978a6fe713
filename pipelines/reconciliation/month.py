"""A month's reconciliation against the warehouse: the snapshots' counts read, the rules of
pipelines/reconcile.py applied to them, and the result stored twice. Its rows go into
`reconciliation` and `rma_results` as the typed values they are (what `status` queries); the
whole result, with each term's replay of exact fractions, goes into `month_results` as JSON
(`result_json`, core/stored.py) for the reports and e-mails that read it again without
recomputing the month (the DAG's render tasks, `send`).
"""
from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import date

from pipelines.core.config import Config
from pipelines.core.months import Month
from pipelines.core.stored import plain, typed
from pipelines.core.timers import timed
from pipelines.reconcile import MonthCounts, reconcile_customers, renewals
from pipelines.reconciliation.results import (
    CategoryMonth,
    MonthResult,
    ReconciliationRow,
    RmaRow,
    changes_between,
)
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import (
    fetch_value,
    open_warehouse,
    run_sql,
    transaction,
)


def _read_counts(con, customer_ids: list[str], not_seen_days: int
                 ) -> dict[str, dict[Month, MonthCounts]]:
    counts: dict[str, dict[Month, MonthCounts]] = {cid: {} for cid in customer_ids}
    for customer_id, month in run_sql(con, "reconcile/months_with_data.sql",
                                      customer_ids=customer_ids).fetchall():
        counts[customer_id][Month.parse(month)] = MonthCounts()
    for customer_id, month, category, counted, end_of_life, not_seen, seen_known in run_sql(
            con, "reconcile/category_counts.sql", customer_ids=customer_ids,
            not_seen_days=not_seen_days).fetchall():
        snapshot = counts[customer_id][Month.parse(month)]
        snapshot.counted[category] = counted
        snapshot.end_of_life[category] = end_of_life
        snapshot.not_seen[category] = not_seen
        snapshot.seen_known[category] = seen_known
    return counts


def reconcile_month(config: Config, month: Month, mark: bool = True) -> MonthResult:
    """Reconcile every customer whose term covers `month`, and store the result; with `mark`,
    also record it as up to date (without, the caller does once it published it:
    `mark_reconciled`, with `result.through_receipt`)."""
    with open_warehouse(config.workspace) as con:
        with transaction(con):
            store_catalog(con, config.catalog)
        through = fetch_value(con, "reconcile/latest_receipt.sql")
        result = compute_month(con, config, month)
        result = replace(result, through_receipt=through, changes=changes_between(
            stored_month(con, config, month), result))
        with timed("store result"):
            _store(con, result, mark)
    return result


def mark_reconciled(config: Config, month: Month, through_receipt: int) -> None:
    """`month`'s stored result is published and up to date with the snapshots received up to
    `through_receipt` (later ones make it stale again)."""
    with open_warehouse(config.workspace) as con, transaction(con):
        run_sql(con, "reconcile/store_reconciled_month.sql", month=str(month),
                through=through_receipt)


def compute_month(con, config: Config, month: Month) -> MonthResult:
    """The month's result from the warehouse as it is (a read-only connection will do). The
    stage timer counts how often a process computes a month: the DAG does it once a run."""
    with timed("reconcile"):
        return _compute_month(con, config, month)


def _compute_month(con, config: Config, month: Month) -> MonthResult:
    customers = config.contracts.in_effect(month)
    ids = [c.id for c in customers]
    counts = _read_counts(con, ids, config.policy.not_seen_days)
    rmas = dict(run_sql(con, "reconcile/headset_rmas.sql", customer_ids=ids,
                        year_start=date(month.year, 1, 1), month_end=month.last_day).fetchall())
    return reconcile_customers(month, customers, counts, rmas, config.policy)


def _store(con, result: MonthResult, mark: bool) -> None:
    with transaction(con):
        run_sql(con, "reconcile/store_reconciliation.sql", report_month=str(result.month),
                **_columns(ReconciliationRow, result.rows))
        run_sql(con, "reconcile/store_rma_results.sql", month=str(result.month),
                **_columns(RmaRow, result.rma))
        run_sql(con, "reconcile/store_month_result.sql", month=str(result.month),
                through=result.through_receipt, result=result_json(result))
        if mark:
            run_sql(con, "reconcile/store_reconciled_month.sql", month=str(result.month),
                    through=result.through_receipt)


def _columns(row_type, rows) -> dict[str, list]:
    """The rows as one list per field, for list parameters: DuckDB types a list from every
    value in it, so amounts stay exact decimals and None is NULL (a pandas frame's object
    column is typed from a sample of its values)."""
    return {f.name: [getattr(row, f.name) for row in rows] for f in fields(row_type)}


def result_json(result: MonthResult) -> str:
    """The month's result as reports and e-mails read it, exactly (core/stored.py)."""
    return json.dumps({
        "rows": [plain(row) for row in result.rows], "rma": [plain(row) for row in result.rma],
        "replays": [[customer_id, category, [plain(m) for m in months]]
                    for (customer_id, category), months in result.replays.items()]},
        sort_keys=True)


def stored_month(con, config: Config, month: Month) -> MonthResult | None:
    """The result `reconcile` last stored for `month`, read without recomputing it; None when
    the month was never reconciled. Renewal proposals follow from the stored replays."""
    found = run_sql(con, "reconcile/stored_month_result.sql", month=str(month)).fetchall()
    if not found:
        return None
    through, text = found[0]
    data = json.loads(text)
    replays = {(customer_id, category): [typed(CategoryMonth, m) for m in months]
               for customer_id, category, months in data["replays"]}
    return MonthResult(month, [typed(ReconciliationRow, row) for row in data["rows"]],
                       [typed(RmaRow, row) for row in data["rma"]],
                       renewals(config.contracts.in_effect(month), month, replays), replays,
                       through)
