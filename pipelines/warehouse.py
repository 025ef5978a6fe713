"""The embedded DuckDB warehouse: connections, the schema, and running the SQL files in sql/.

DuckDB allows one read-write process per file: writers open, work and close; readers open
`read_only=True`. Partition loads run inside `transaction()` so a crash leaves the old rows.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import duckdb

from pipelines.errors import RunError
from pipelines.workspace import Workspace

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_COMMENT = re.compile(r"--[^\n]*")
_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=None)
def _statements(name: str) -> tuple[str, ...]:
    text = _COMMENT.sub("", (SQL_DIR / name).read_text(encoding="utf-8"))
    return tuple(part.strip() for part in text.split(";") if part.strip())


def run_sql(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Run every statement of `sql/<name>`, each with the parameters it names."""
    result = con
    for statement in _statements(name):
        wanted = {key: params[key] for key in _PARAMETER.findall(statement)}
        result = con.execute(statement, wanted) if wanted else con.execute(statement)
    return result


@contextmanager
def open_warehouse(workspace: Workspace, read_only: bool = False
                   ) -> Iterator[duckdb.DuckDBPyConnection]:
    path = workspace.warehouse
    if read_only and not path.exists():
        raise RunError(f"no warehouse yet at {path}: run `python -m pipelines ingest` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise RunError(f"the warehouse {path} is in use by another polyrecon process; "
                           f"wait for it to finish and run again") from None
        raise RunError(f"cannot open the warehouse {path}: {error}") from None
    try:
        if not read_only:
            run_sql(con, "schema.sql")
            run_sql(con, "views.sql")
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()
