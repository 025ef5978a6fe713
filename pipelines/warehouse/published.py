"""A read-only copy of the warehouse for the DAG's render tasks.

DuckDB lets one process write a file, and readers only while no process writes it: render
tasks reading the warehouse itself would wait for every writer (the upload DAG, a CLI run)
and, in Airflow's one-slot writer pool, for each other. The DAG's `reconcile` task, holding
the workspace lock, copies the warehouse once it stored the month's result; the render and
portfolio tasks read that copy, as many at once as Airflow has workers, and take no lock.

On DuckLake nothing is copied: readers open the lake itself, as it was at the catalog snapshot
`reconcile` saw (DuckLake's time travel), named in `.published/lake-<month>.json`.

One copy is kept: the month last reconciled by the DAG (a copy per month would grow with the
warehouse every month). A render task of an older run whose copy is gone says to clear its
`reconcile` task.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipelines.core.errors import RunError
from pipelines.core.files import write_atomically
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.warehouse import lake
from pipelines.warehouse.connection import is_lake, open_warehouse

FOLDER = ".published"


def published_copy(workspace: Workspace, month: Month) -> Path:
    """The copy for `month`; RunError when the DAG's `reconcile` did not publish it."""
    copy = _copy_path(workspace, month)
    if not copy.exists():
        raise RunError(f"no published copy of the warehouse for {month} ({copy}): clear the "
                       f"DAG run's `reconcile` task for {month} so it publishes one")
    return copy


def publish(workspace: Workspace, month: Month) -> Path:
    """Copy the warehouse for readers of `month`'s result (the caller holds the lock)."""
    if is_lake(workspace):
        with open_warehouse(workspace, read_only=True) as con:
            snapshot = lake.current_snapshot(con)
        pointer = _copy_path(workspace, month)
        pointer.parent.mkdir(mode=0o700, exist_ok=True)
        write_atomically(pointer, json.dumps({"snapshot": snapshot}) + "\n")
        _remove_others(pointer)
        return pointer
    with open_warehouse(workspace) as con:
        con.execute("CHECKPOINT")  # everything in the file itself, nothing left in the WAL
    copy = _copy_path(workspace, month)
    copy.parent.mkdir(mode=0o700, exist_ok=True)
    temporary = copy.with_name(f".{copy.name}.tmp")
    shutil.copyfile(workspace.warehouse, temporary)
    temporary.replace(copy)  # a reader that opened the old copy keeps reading it
    _remove_others(copy)
    return copy


def _remove_others(copy: Path) -> None:
    for older in copy.parent.glob("*-*"):
        if older != copy and older.name.startswith(("warehouse-", "lake-")):
            older.unlink()


def _copy_path(workspace: Workspace, month: Month) -> Path:
    if is_lake(workspace):
        return workspace.home / FOLDER / f"lake-{month}.json"
    return workspace.home / FOLDER / f"warehouse-{month}.duckdb"
