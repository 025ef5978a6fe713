"""The scale-out warehouse: DuckLake, its catalog in PostgreSQL, its data in Parquet files on a
folder or object storage (partner.yaml `warehouse.ducklake`, docs/deploying.md "Past one machine").

The same SQL in sql/ runs on both warehouses; what DuckLake does differently is here, and only
here:
- the extensions come as PyPI packages (duckdb-extension-*) and load by file path, since
  DuckDB's extension repository is not reachable from every partner's workers;
- DuckLake has no sequences: receipt numbers come from a PostgreSQL sequence beside the catalog;
- the tables are created and migrated once per schema version (a statement that changes the
  catalog on every connection would make concurrent writers conflict); the views and macros are
  made per connection as temporary ones, so read-only connections have them too;
- the workspace lock is a PostgreSQL advisory lock, which spans machines and, like `flock`,
  dies with its holder: exclusive for a whole-workspace job, shared plus one per customer for a
  job on one customer's partitions, so writers on different customers commit side by side;
- a writer whose commit met another's ("Transaction conflict") is retried (`retry_conflicts`);
- the lock dies with its PostgreSQL session, also when the server restarts while the job goes
  on (DuckDB's own connections to it reconnect): every commit first asks the lock's session
  whether it still holds the lock (`assert_lock_held`), so a job that lost it stops before its
  next write, and an e-mail is handed to SMTP only once its key is claimed in a table with a
  primary key, through that same session (`mail_claims`): no two senders send one message;
- the catalog's connection string is never shown (it names hosts and users): messages name
  the setting, warehouse.ducklake.catalog.

Passwords and keys come from the environment, never partner.yaml: PGPASSWORD (libpq), and for
s3:// data AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and, for a server of the
partner's own, AWS_ENDPOINT_URL.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import duckdb

from pipelines.core.errors import ConfigError, LockBusy, RunError

log = logging.getLogger("polyrecon")
T = TypeVar("T")

LAKE = "lake"  # the DuckLake catalog's name in every connection
_EXTENSIONS = ("postgres_scanner", "ducklake", "httpfs")  # postgres before the DuckLake ATTACH
RECEIPT_SEQUENCE = "polyrecon_receipt_seq"
_SCHEMA_TABLE = "polyrecon_schema"
# A conflict is another writer's commit landing first: try again after a short, growing wait.
CONFLICT_ATTEMPTS = 5
_CONFLICT = re.compile(r"transaction conflict", re.IGNORECASE)
_LOCK_POLL_SECONDS = 0.2
_CONNECT_SECONDS = 10  # to reach the catalog's PostgreSQL
_SCHEMA_LOCK_SECONDS = 120  # a writer making the tables, or attaching a new lake
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
CATALOG = "the DuckLake catalog's PostgreSQL (warehouse.ducklake.catalog in partner.yaml)"


def extension_file(name: str) -> Path:
    """The extension's file inside its PyPI package, for the DuckDB this process runs."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise RunError(f"the DuckDB extension package duckdb-extension-{name.replace('_', '-')} "
                       f"is not installed: install requirements.txt with constraints.txt")
    path = (Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}"
            / f"{name}.duckdb_extension")
    if not path.exists():
        raise RunError(f"duckdb-extension-{name.replace('_', '-')} does not match DuckDB "
                       f"{duckdb.__version__} (no {path.name} for it): install "
                       f"requirements.txt with constraints.txt")
    return path


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _s3_secret(data_path: str) -> str | None:
    """A CREATE SECRET for s3:// data from the environment (temporary: in this connection only)."""
    if not data_path.startswith("s3://"):
        return None
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise ConfigError(f"warehouse.ducklake.data_path is {data_path}: set "
                          f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for it")
    options = {"TYPE": "s3", "KEY_ID": key, "SECRET": secret,
               "REGION": os.environ.get("AWS_REGION", "us-east-1")}
    if os.environ.get("AWS_SESSION_TOKEN"):  # temporary credentials (STS, an assumed role)
        options["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(ENDPOINT=parts.netloc, URL_STYLE="path",
                       USE_SSL="true" if parts.scheme == "https" else "false")
    body = ", ".join(f"{name} {value if name in ('TYPE', 'USE_SSL') else _literal(value)}"
                     for name, value in options.items())
    return f"CREATE OR REPLACE SECRET lake_data ({body})"


def connect(settings, read_only: bool, memory_limit: str, snapshot: int | None = None
            ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached and in use (`snapshot`: as it was then)."""
    con = duckdb.connect(config={"memory_limit": memory_limit})
    try:
        for name in _EXTENSIONS:
            con.execute(f"LOAD {_literal(str(extension_file(name)))}")
        secret = _s3_secret(settings.data_path)
        if secret:
            con.execute(secret)
        options = [f"DATA_PATH {_literal(settings.data_path)}"]
        if read_only:
            options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        catalog = _literal("ducklake:postgres:" + _bounded(settings.catalog))
        attach = f"ATTACH {catalog} AS {LAKE} ({', '.join(options)})"
        if read_only:
            con.execute(attach)
        else:
            with _schema_lock(settings):  # the first writers' ATTACH makes DuckLake's tables
                con.execute(attach)
        con.execute(f"USE {LAKE}")
    except duckdb.Error as error:
        con.close()
        raise RunError(f"cannot open the DuckLake warehouse (data {settings.data_path}): "
                       f"{_reason(error, settings)}; check warehouse.ducklake in partner.yaml "
                       f"and that its PostgreSQL and storage are reachable") from None
    return con


def _reason(error: BaseException, settings) -> str:
    """An error's first line without the catalog's connection string, which libpq and
    DuckDB repeat ('… at "host=… user=…": connection to server at …, port … failed: …')."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "Postgres at" in text or "connection to server" in text:
        return text.rsplit("failed: ", 1)[-1].strip() or "no answer"
    for shown in (_bounded(settings.catalog), settings.catalog):
        text = text.replace(shown, "warehouse.ducklake.catalog")
    return text


def failure(settings, error: duckdb.Error) -> RunError | None:
    """One sentence for a DuckLake statement that failed on I/O — the lock gone with its
    session (whatever DuckDB says then: assert_lock_held), the catalog's PostgreSQL not
    answering, the data folder or bucket refusing a read or write — or None for any other
    error."""
    assert_lock_held(settings)
    if _ON_CATALOG.search(str(error)):
        return RunError(f"{CATALOG} stopped answering ({_reason(error, settings)}); nothing "
                        f"was lost: the unfinished step was rolled back; once it answers, run "
                        f"the same command again")
    if isinstance(error, duckdb.IOException | duckdb.ConnectionException):
        return RunError(f"cannot read or write the DuckLake data at {settings.data_path} "
                        f"({_reason(error, settings)}); nothing was lost: the unfinished step "
                        f"was rolled back; make it writable (or remove what is in its way) and "
                        f"run the same command again")
    return None


# DuckDB's words for a failure of its connection to the catalog's PostgreSQL.
_ON_CATALOG = re.compile(r"postgres|__ducklake_metadata|failed to execute query|"
                         r"server closed the connection", re.IGNORECASE)


def _bounded(catalog: str) -> str:
    """The catalog's connection string with a connect timeout, unless it names one."""
    if "connect_timeout" in catalog:
        return catalog
    return f"{catalog} connect_timeout={_CONNECT_SECONDS}"


def catalog_session(settings, application: str):
    """A PostgreSQL session on the catalog's database (psycopg), for locks and receipts."""
    import psycopg

    try:
        # Keepalives: a lock whose holder's connection silently died is released in minutes.
        return psycopg.connect(settings.catalog, autocommit=True, connect_timeout=_CONNECT_SECONDS,
                               application_name=application[:63], keepalives=1,
                               keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    except psycopg.Error as error:
        raise RunError(f"cannot reach {CATALOG} ({_reason(error, settings)}): start it, or "
                       f"correct the setting, and run the same command again") from None


@contextmanager
def _catalog_errors(settings) -> Iterator[None]:
    """A PostgreSQL error of the catalog's as one sentence."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        raise RunError(f"{CATALOG} answered: {_reason(error, settings)}; check it and run "
                       f"again") from None


def draw_receipts(settings, count: int) -> list[int]:
    """`count` receipt numbers from the catalog's sequence (apply_schema makes it): later =
    more recently received."""
    with catalog_session(settings, "polyrecon receipts") as session, _catalog_errors(settings):
        return [row[0] for row in session.execute(
            f"SELECT nextval('{RECEIPT_SEQUENCE}') FROM generate_series(1, %s)", (count,))]


def _split_schema(statements: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Schema statements into those that make and migrate the lake's tables (once per
    version) and those each connection makes for itself as temporary objects (macros, views)."""
    durable, per_connection = [], []
    for statement in statements:
        head = statement.lstrip().upper()
        if head.startswith("CREATE SEQUENCE"):
            continue  # receipts come from PostgreSQL (draw_receipts)
        if head.startswith(("CREATE OR REPLACE MACRO", "CREATE OR REPLACE VIEW")):
            per_connection.append(re.sub(r"^\s*CREATE OR REPLACE ", "CREATE OR REPLACE TEMP ",
                                         statement, count=1, flags=re.IGNORECASE))
        elif head.startswith("CREATE TEMP"):
            per_connection.append(statement)
        else:
            durable.append(statement)
    return durable, per_connection


def apply_schema(con: duckdb.DuckDBPyConnection, settings, statements: tuple[str, ...],
                 read_only: bool) -> None:
    """A writer makes the tables once per version of the schema (under an advisory lock, so
    two first writers do not both create them); every connection then makes its own macros
    and views."""
    durable, per_connection = _split_schema(statements)
    if not read_only:
        _create_tables(con, settings, durable)
    for statement in per_connection:
        con.execute(statement)


def _create_tables(con: duckdb.DuckDBPyConnection, settings, durable: list[str]) -> None:
    version = hashlib.sha256("\n;\n".join(durable).encode()).hexdigest()
    with _schema_lock(settings) as session, _catalog_errors(settings):
        session.execute(f"CREATE SEQUENCE IF NOT EXISTS {RECEIPT_SEQUENCE}")
        session.execute(f"CREATE TABLE IF NOT EXISTS {_SCHEMA_TABLE} (version text PRIMARY KEY)")
        session.execute(_catalog_sql("delivery/lake_mail_claims.sql"))
        if session.execute(f"SELECT 1 FROM {_SCHEMA_TABLE} WHERE version = %s",
                           (version,)).fetchone() is None:
            con.begin()
            for statement in durable:
                con.execute(statement)
            con.commit()
            session.execute(f"INSERT INTO {_SCHEMA_TABLE} VALUES (%s) ON CONFLICT DO NOTHING",
                            (version,))


def initialised(settings) -> bool:
    """Whether a writer made the lake's tables (before that, there is nothing to read)."""
    with catalog_session(settings, "polyrecon check") as session, _catalog_errors(settings):
        if session.execute(f"SELECT to_regclass('{_SCHEMA_TABLE}')").fetchone()[0] is None:
            return False
        return session.execute(f"SELECT EXISTS (SELECT 1 FROM {_SCHEMA_TABLE})").fetchone()[0]


@contextmanager
def _schema_lock(settings):
    """A session holding the lock under which the lake's tables are made (held for a
    moment by each writer as it connects; waited for at most _SCHEMA_LOCK_SECONDS)."""
    import psycopg

    with catalog_session(settings, "polyrecon schema") as session:
        session.execute(f"SET lock_timeout = '{_SCHEMA_LOCK_SECONDS}s'")
        try:
            session.execute("SELECT pg_advisory_lock(%s)", (_lock_key("schema"),))
        except psycopg.errors.LockNotAvailable:
            raise RunError(f"another polyrecon process has been setting up {CATALOG} for "
                           f"{_SCHEMA_LOCK_SECONDS} s: look for a hung process, then run again"
                           ) from None
        session.execute("SET lock_timeout = 0")
        yield session  # unlocked as the session closes


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0]


def published_snapshot(path: Path) -> int:
    return int(json.loads(path.read_text(encoding="utf-8"))["snapshot"])


def is_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.Error) and bool(_CONFLICT.search(str(error)))


def retry_conflicts(work: Callable[[], T], what: str, attempts: int = CONFLICT_ATTEMPTS,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """`work` again when its commit met another writer's, up to `attempts` times. `work` must
    be safe to repeat: a job whose transaction was rolled back, which finds its claimed
    files where a crash would have left them (intake/take.py)."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.Error as error:
            if not is_conflict(error):
                raise
            if attempt == attempts:
                raise RunError(f"{what} met another writer's commit {attempts} times "
                               f"(DuckLake transaction conflict); nothing of it was kept: run "
                               f"it again") from None
            wait = min(8.0, 0.25 * 2 ** attempt) * (0.5 + random.random())
            log.info("%s: another writer committed first (DuckLake transaction conflict); "
                     "trying again in %.1f s (attempt %d of %d)", what, wait, attempt + 1,
                     attempts)
            sleep(wait)
    raise AssertionError("unreachable")


def _lock_key(scope: str) -> int:
    """A 63-bit advisory lock key for `scope` (positive: pg_locks shows it as two halves)."""
    return int.from_bytes(hashlib.sha256(f"polyrecon:{scope}".encode()).digest()[:8], "big") >> 1


@contextmanager
def advisory_lock(settings, command: str, customer_id: str | None, wait: float
                  ) -> Iterator[None]:
    """The lake's workspace lock: exclusive, or with `customer_id` shared with other
    customers' jobs and exclusive for that customer. Waited for in PostgreSQL's queue (a
    waiting whole-workspace job is not overtaken by new per-customer ones) for up to `wait`
    seconds; released when the session ends, however the process ends."""
    import psycopg

    session = catalog_session(settings, f"polyrecon {command} pid {os.getpid()}")
    wanted = [("pg_advisory_lock_shared" if customer_id else "pg_advisory_lock",
               _lock_key("workspace"), "this warehouse")]
    if customer_id:
        wanted.append(("pg_advisory_lock", _lock_key(f"customer:{customer_id}"),
                       f"customer {customer_id}"))
    try:
        deadline = time.monotonic() + wait
        for function, key, what in wanted:
            left = max(0.0, deadline - time.monotonic())
            try:
                if left <= 0:  # no waiting: take it now or not at all
                    function = function.replace("pg_advisory", "pg_try_advisory")
                    if not session.execute(f"SELECT {function}(%s)", (key,)).fetchone()[0]:
                        raise psycopg.errors.LockNotAvailable
                else:
                    session.execute(f"SET lock_timeout = '{int(left * 1000) or 1}ms'")
                    session.execute(f"SELECT {function}(%s)", (key,))
            except psycopg.errors.LockNotAvailable:
                raise LockBusy(
                    f"another polyrecon run ({_holder(session, key)}) is working on {what}; "
                    f"wait for it to finish, or pass --wait SECONDS to wait for it") from None
        session.execute("SET lock_timeout = 0")
        _held[settings.catalog] = _Held(session, [key for _, key, _ in wanted], command)
        try:
            yield
        finally:
            _held.pop(settings.catalog, None)
    finally:
        # Given back at once: closing the session alone frees them only when the server has
        # noticed, and a job started right after (a next task, wait 0) would be refused.
        with suppress(psycopg.Error):
            session.execute("SELECT pg_advisory_unlock_all()")
        session.close()  # a broken session's locks go with it all the same


@dataclass(frozen=True)
class _Held:
    session: object  # the psycopg connection holding the advisory locks
    keys: list[int]
    command: str


_held: dict[str, _Held] = {}  # catalog -> the lock this process holds on it


def _catalog_sql(name: str) -> str:
    """A statement for the catalog's PostgreSQL from sql/ (psycopg's %(name)s parameters)."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def lock_lost(command: str) -> RunError:
    return RunError(f"`{command}` lost its lock on the DuckLake warehouse: the catalog's "
                    f"PostgreSQL restarted or stopped (or the connection to it broke) while "
                    f"this run held the lock; nothing more was written: run again")


def assert_lock_held(settings) -> None:
    """Before a write: the lock this process took on the lake is still held by its session.
    A session that died (PostgreSQL restarted: psycopg does not reconnect) released it, and
    another job may have taken it since. Nothing to check where this process took no lock."""
    import psycopg

    held = _held.get(settings.catalog)
    if held is None:
        return
    try:
        holding = held.session.execute(_catalog_sql("warehouse/lake_lock_held.sql"),
                                       {"keys": held.keys}).fetchone()[0]
    except psycopg.Error:
        holding = 0
    if holding != len(held.keys):
        raise lock_lost(held.command)


@dataclass(frozen=True)
class Claim:
    """Another sender's claim of a message's delivery attempt."""
    claimed_by: str  # its session's application name
    status: str | None  # the answer it recorded (None: none yet)
    answer: str | None
    alive: bool  # its session is still open: it may be sending now


@contextmanager
def mail_claims(settings) -> Iterator[MailClaims]:
    """The claims of a delivery run: made through the session holding this process's lock,
    so a job that lost its lock claims nothing (and sends nothing); else through a session of
    their own."""
    held = _held.get(settings.catalog)
    if held is not None:
        yield MailClaims(settings, held.session, held.command)
        return
    with catalog_session(settings, f"polyrecon mail pid {os.getpid()}") as session:
        yield MailClaims(settings, session, None)


@dataclass(frozen=True)
class MailClaims:
    settings: object
    session: object
    command: str | None  # the job whose lock session this is

    @contextmanager
    def _answered(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as error:
            if self.command is not None:
                raise lock_lost(self.command) from None
            raise RunError(f"{CATALOG} answered: {_reason(error, self.settings)}; check it and "
                           f"run again") from None

    def claim(self, key: str, queued_at, attempt: int) -> Claim | None:
        """This delivery attempt claimed for this sender (None), or the claim another made."""
        where = {"message_key": key, "queued_at": queued_at, "attempt": attempt}
        with self._answered():
            if self.session.execute(_catalog_sql("delivery/lake_mail_claim.sql"),
                                    where).fetchone():
                return None
            return Claim(*self.session.execute(
                _catalog_sql("delivery/lake_mail_claim_found.sql"), where).fetchone())

    def settle(self, key: str, queued_at, attempt: int, status: str, answer: str | None
               ) -> None:
        """The server's answer beside the claim, before the ledger records it."""
        with self._answered():
            self.session.execute(_catalog_sql("delivery/lake_mail_claim_settle.sql"),
                                 {"message_key": key, "queued_at": queued_at,
                                  "attempt": attempt, "status": status, "answer": answer})


def _holder(session, key: int) -> str:
    row = session.execute(
        "SELECT a.application_name, a.client_addr,"
        " to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        " FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
        " AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s LIMIT 1",
        (key,)).fetchone()
    if row is None:
        return "holder unknown"
    name, address, started = row
    since = f", since {started} UTC" if started else ""  # hidden from other roles
    return f"{name or 'unnamed'} on {address or 'this host'}{since}"
