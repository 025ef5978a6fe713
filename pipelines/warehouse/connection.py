"""The warehouse: connections, the schema, and running the SQL files in sql/.

The embedded DuckDB file is the default. DuckDB allows one read-write process per file:
writers open, work and close; readers open `read_only=True`. Partition loads run inside
`transaction()` so a crash leaves the old rows. With partner.yaml `warehouse.ducklake` the same
SQL runs on DuckLake instead (warehouse/lake.py: what differs there).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from pipelines.core.config import lake_settings
from pipelines.core.errors import DamagedWarehouse, RunError
from pipelines.core.timers import timed_statement
from pipelines.core.workspace import Workspace
from pipelines.warehouse import lake

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# The schema in the order it is applied: the tables, what brings an older warehouse's tables up
# to date, then what is made from them (macros, views, the staging table).
SCHEMA = ("warehouse/tables.sql", "warehouse/migrations.sql", "warehouse/rule_macros.sql",
          "warehouse/views.sql")
_TOKEN = re.compile(r"'(?:[^']|'')*'|--[^\n]*|;|[^';-]+|-")  # a string literal is one token
_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")
# DuckDB would take 80 % of the machine; the pipeline shares it with Airflow workers. Beyond
# this, DuckDB spills to disk instead of growing.
MEMORY_LIMIT = "1GB"


@cache
def _statements(name: str) -> tuple[str, ...]:
    """The statements of a SQL file: split on `;` and stripped of `--` comments, both only
    outside string literals."""
    statements, current = [], []
    for token in _TOKEN.findall((SQL_DIR / name).read_text(encoding="utf-8")):
        if token.startswith("--"):
            continue
        if token == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(token)
    statements.append("".join(current).strip())
    return tuple(statement for statement in statements if statement)


def run_sql(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Run every statement of `sql/<name>`, each with the parameters it names."""
    result = con
    with timed_statement(name):
        for statement in _statements(name):
            wanted = {key: params[key] for key in _PARAMETER.findall(statement)}
            result = con.execute(statement, wanted) if wanted else con.execute(statement)
    return result


def fetch_value(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> Any:
    """The first value of `sql/<name>`'s answer, or None; the result is read to its end (DuckDB
    refuses other work on a connection with an unfinished result)."""
    rows = run_sql(con, name, **params).fetchall()
    return rows[0][0] if rows else None


# Receipt numbers drawn from the sequence a hundred at a time per connection (one query each,
# not one per file); numbers left unused when the connection closes are gaps, never reused.
_RECEIPT_BLOCK = 100
_drawn_receipts: dict[int, list[int]] = {}
_lake_of: dict[int, object] = {}  # connection -> its DuckLake settings, for receipts


def next_receipt(con: duckdb.DuckDBPyConnection) -> int:
    """The next receipt number: later receipts are the more recently received."""
    drawn = _drawn_receipts.setdefault(id(con), [])
    if not drawn:
        settings = _lake_of.get(id(con))
        drawn += lake.draw_receipts(settings, _RECEIPT_BLOCK) if settings else [
            receipt for (receipt,) in run_sql(con, "warehouse/draw_receipts.sql",
                                              count=_RECEIPT_BLOCK).fetchall()]
    return drawn.pop(0)


def is_lake(workspace: Workspace) -> bool:
    return lake_settings(workspace) is not None


def warehouse_exists(workspace: Workspace) -> bool:
    """Whether anything was ever written to the warehouse (its file, or the lake's tables)."""
    settings = lake_settings(workspace)
    return lake.initialised(settings) if settings else workspace.warehouse.exists()


def load_frame(con: duckdb.DuckDBPyConnection, name: str, frame, **params: Any) -> None:
    """Run `sql/<name>` with `frame` (a pandas DataFrame) visible to it as `staged_rows`."""
    con.register("staged_rows", frame)
    try:
        run_sql(con, name, **params)
    finally:
        con.unregister("staged_rows")


@contextmanager
def open_warehouse(workspace: Workspace, read_only: bool = False,
                   memory_limit: str = MEMORY_LIMIT, path: Path | None = None
                   ) -> Iterator[duckdb.DuckDBPyConnection]:
    """The workspace's warehouse, or with `path` a copy of it (warehouse/published.py)."""
    settings = lake_settings(workspace)
    if settings is not None:
        with _open_lake(settings, read_only, memory_limit, path) as con:
            yield con
        return
    path = path or workspace.warehouse
    if read_only and not path.exists():
        raise RunError(f"no warehouse yet at {path}: run `python -m pipelines ingest` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only,
                             config={"memory_limit": memory_limit})
    except duckdb.Error as error:
        # DuckDB's words for its file lock ("Could not set lock … Conflicting lock"); a bare
        # "lock" would also match a damaged file's "block at location …".
        if re.search(r"\b(set|conflicting) lock\b", str(error), re.IGNORECASE):
            raise RunError(f"the warehouse {path} is in use by another polyrecon process; "
                           f"wait for it to finish and run again") from None
        raise _storage_error(path, error) or RunError(
            f"cannot open the warehouse {path}: {error}") from None
    try:
        if not read_only:
            create_schema(con)
            if fetch_value(con, "warehouse/older_snapshots.sql"):
                with transaction(con):
                    run_sql(con, "warehouse/count_older_snapshots.sql")
        elif _missing_tables(con):
            raise RunError(f"the warehouse {path} was made by an older polyrecon: run "
                           f"`python -m pipelines ingest` once to bring it up to date")
        else:
            run_sql(con, "warehouse/classes_for_readers.sql")
        yield con
    except duckdb.Error as error:
        # Damage or a full disk can surface at any read or write, not only at connect.
        problem = _storage_error(path, error)
        if problem is None:
            raise
        raise problem from None
    finally:
        _drawn_receipts.pop(id(con), None)
        con.close()


@contextmanager
def _open_lake(settings, read_only: bool, memory_limit: str, published: Path | None
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    if read_only and not lake.initialised(settings):
        raise RunError(f"no warehouse yet in {lake.CATALOG}: run `python -m pipelines ingest` "
                       f"first")
    snapshot = lake.published_snapshot(published) if published else None
    con = lake.connect(settings, read_only, memory_limit, snapshot)
    _lake_of[id(con)] = settings
    try:
        lake.apply_schema(con, settings,
                          tuple(statement for name in SCHEMA for statement in _statements(name)),
                          read_only)
        yield con
    except duckdb.Error as error:
        # Its PostgreSQL or storage gone at any read or write; a conflict is retried above.
        problem = None if lake.is_conflict(error) else lake.failure(settings, error)
        if problem is None:
            raise
        raise problem from None
    finally:
        _drawn_receipts.pop(id(con), None)
        _lake_of.pop(id(con), None)
        con.close()


_DAMAGED = ("not a valid duckdb database", "corrupt", "checksum", "could not read enough bytes",
            "failed to read", "invalid block", "serialization error")
_FULL = ("no space left", "file too large", "disk quota")


def _storage_error(path: Path, error: Exception) -> RunError | None:
    """One sentence for a damaged warehouse file or a full disk; None for anything else."""
    text = str(error).lower()
    if "created with an newer version" in text or "created with a newer version" in text:
        return RunError(f"the warehouse {path} was written by a newer DuckDB than this "
                        f"polyrecon's {duckdb.__version__} (docs/deploying.md \"Versions\"); "
                        f"make it again "
                        f"from archive/ with `python -m pipelines rebuild --home {path.parent}` "
                        f"(the old file is kept beside it)")
    if any(words in text for words in _FULL):
        return RunError(f"the disk holding {path} is full ({str(error).splitlines()[0]}); "
                        f"nothing was lost: the unfinished step was rolled back, free space "
                        f"and run the same command again")
    if any(words in text for words in _DAMAGED):
        return DamagedWarehouse(
            f"the warehouse {path} is damaged ({str(error).splitlines()[0]}); rebuild it from "
            f"archive/ with `python -m pipelines rebuild --home {path.parent}` (the damaged "
            f"file is kept beside it)")
    return None


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The schema on a warehouse file, new or made by an older polyrecon (idempotent; DuckLake
    takes the same statements its own way: lake.apply_schema). A file last brought up to this
    very schema (the macro `applied_schema()` names its fingerprint) is left as it is: the
    schema's statements cost a writing connection more than most of its work."""
    fingerprint = _schema_fingerprint()
    with suppress(duckdb.CatalogException):  # no macro yet: a new or older file
        if fetch_value(con, "warehouse/applied_schema.sql") == fingerprint:
            for statement in _temporary_objects():  # they live as long as the connection
                con.execute(statement)
            return
    for name in SCHEMA:
        run_sql(con, name)
    # A hex digest: nothing to quote. Last, so a file whose schema broke off is brought up again.
    con.execute(f"CREATE OR REPLACE MACRO applied_schema() AS '{fingerprint}'")


@cache
def _temporary_objects() -> tuple[str, ...]:
    return tuple(statement for name in SCHEMA for statement in _statements(name)
                 if statement.upper().startswith("CREATE TEMP"))


@cache
def _schema_fingerprint() -> str:
    """Of the statements themselves (as lake._create_tables versions the lake's): the files are
    read once, by _statements, and a changed comment does not re-apply the schema."""
    return hashlib.sha256("\n;\n".join(statement for name in SCHEMA
                                        for statement in _statements(name)).encode()).hexdigest()


def _missing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    wanted = set(re.findall(r"CREATE (?:TABLE IF NOT EXISTS|OR REPLACE VIEW) (\w+)",
                            "".join((SQL_DIR / name).read_text() for name in SCHEMA)))
    present = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    return wanted - present


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of the block or none of it; on DuckLake committed only while this process still
    holds its lock (lake.assert_lock_held)."""
    con.begin()
    try:
        yield
        settings = _lake_of.get(id(con))
        if settings is not None:
            lake.assert_lock_held(settings)
    except BaseException:
        # A connection that broke (DuckLake's PostgreSQL gone) cannot roll back, and needs
        # not: its server drops the transaction. The first error is the one to tell.
        with suppress(duckdb.Error):
            con.rollback()
        raise
    con.commit()
