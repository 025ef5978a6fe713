"""The monthly job on DuckLake — catalog in a real PostgreSQL, data on a real S3 server — gives
what the embedded warehouse gives on the same inputs, with writers on different customers side
by side, and a writer killed in the middle of its commit leaves nothing half done."""
from __future__ import annotations

import re
import signal
import time
from datetime import date

import psycopg
import pytest
from harness import (
    KEPT_CUSTOMERS,
    MONTH,
    assert_same,
    copy_workspace,
    fingerprint,
    polyrecon,
    polyrecon_here,
    start,
)
from servers import on_ducklake

from pipelines.core.errors import RunError
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.warehouse import lake as lake_backend
from pipelines.warehouse.connection import open_warehouse, transaction
from pipelines.warehouse.run_lock import workspace_lock

RUN = ("run", "--month", MONTH)


def _comparable(found: dict) -> dict:
    """A fingerprint without what names the warehouse (`status` says which it is)."""
    return {key: value for key, value in found.items() if key != "status"}


def test_writers_on_different_customers_at_once_give_the_embedded_result_byte_for_byte(
        template, embedded_run, lake, tmp_path):
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake)
    writers = [start(home, "ingest", "--month", MONTH, "--customer", customer)
               for customer in KEPT_CUSTOMERS]
    for writer, customer in zip(writers, KEPT_CUSTOMERS, strict=True):
        _out, err = writer.communicate(timeout=600)
        # No --wait: a writer refused by another's lock would fail at once.
        assert writer.returncode == 0, f"{customer}: {err[-3000:]}"
    done = polyrecon_here(home, *RUN)  # after the writers: what they left is tested
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same(_comparable(fingerprint(home)), _comparable(embedded_run[1]))
    assert not (home / "warehouse.duckdb").exists()
    assert "DuckLake" in polyrecon_here(home, "status").stdout


def test_a_writer_killed_in_the_middle_of_its_commit_leaves_nothing_and_the_next_run_finishes(
        template, embedded_run, lake, tmp_path):
    catalog, data_path = lake
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), catalog, data_path)
    first, killed = KEPT_CUSTOMERS[0], KEPT_CUSTOMERS[1]
    done = polyrecon_here(home, "ingest", "--month", MONTH, "--customer", first)
    assert done.returncode == 0, done.stderr[-3000:]
    before = _snapshots(home)
    # Every DuckLake commit writes a row of ducklake_snapshot; holding that table against
    # writers (readers go on) stops the next commit inside its PostgreSQL transaction.
    with psycopg.connect(catalog) as blocker:
        blocker.execute("LOCK TABLE ducklake_snapshot IN EXCLUSIVE MODE")
        writer = start(home, "ingest", "--month", MONTH, "--customer", killed)
        try:
            _wait_for_blocked_commit(catalog, writer)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        blocker.rollback()
    assert _snapshots(home) == before  # nothing of the killed commit
    assert not list((home / "archive" / killed).rglob("*.csv"))  # its files not archived
    assert list((home / "inbox").rglob(f"{killed}/*"))  # but still there to be taken

    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same(_comparable(fingerprint(home)), _comparable(embedded_run[1]))


def _snapshots(home) -> list[tuple]:
    with open_warehouse(Workspace.resolve(home), read_only=True) as con:
        return sorted(con.execute("SELECT customer_id, month, sha256 FROM snapshots").fetchall())


def _wait_for_blocked_commit(catalog: str, writer, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(catalog, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'ducklake_snapshot' AND NOT l.granted").fetchone()[0]
            if waiting:
                return
            if writer.poll() is not None:
                pytest.fail(f"the writer ended before its commit: {writer.stderr.read()[-2000:]}")
            time.sleep(0.05)
    pytest.fail("the writer never reached its commit")


def _wait_for_waiting_lock(catalog: str, waiter, timeout: float = 120) -> None:
    """Until a session waits in PostgreSQL's queue for an advisory lock (the waiter's)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(catalog, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                      " AND NOT granted").fetchone()[0]
            if waiting:
                return
            if waiter.poll() is not None:
                pytest.fail(f"the waiter ended before it waited: {waiter.stderr.read()[-2000:]}")
            time.sleep(0.05)
    pytest.fail("the waiter never waited for the lock")


def test_a_job_on_one_customer_shares_the_lock_only_with_other_customers(
        template, lake, tmp_path):
    catalog, data_path = lake  # written as interfaces.md shows it
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), f"postgres:{catalog}",
                       data_path)
    workspace = Workspace.resolve(home)
    held, other = KEPT_CUSTOMERS[0], KEPT_CUSTOMERS[1]
    with workspace_lock(workspace, "test-holder", customer_id=held):
        done = polyrecon(home, "ingest", "--month", MONTH, "--customer", other)
        assert done.returncode == 0, done.stderr[-3000:]
        for args in (("ingest", "--month", MONTH, "--customer", held), RUN):
            refused = polyrecon(home, *args)
            assert refused.returncode == 1
            assert "another polyrecon run (polyrecon test-holder pid" in refused.stderr
            assert "Traceback" not in refused.stderr
    done = polyrecon_here(home, "ingest", "--month", MONTH, "--customer", held)
    assert done.returncode == 0, done.stderr[-3000:]  # the lock went with its holder


def test_a_commit_that_meets_another_writers_is_tried_again_and_counted_once(lake, tmp_path):
    """Two writers replacing rows of one table: DuckLake refuses the later commit; the retry
    does the work again on what the first committed."""
    catalog, data_path = lake
    home = tmp_path / "ws"
    (home / "config").mkdir(parents=True)
    on_ducklake(home, catalog, data_path)
    workspace = Workspace.resolve(home)
    attempts = []
    with open_warehouse(workspace) as first, open_warehouse(workspace) as second:
        first.execute("INSERT INTO seen_models VALUES ('first old'), ('second old')")

        def replace_models() -> int:
            attempts.append(1)
            with transaction(first):
                first.execute("DELETE FROM seen_models WHERE model_key LIKE 'first%'")
                first.execute("INSERT INTO seen_models VALUES ('first model')")
                if len(attempts) == 1:  # the other writer commits in between, once
                    with transaction(second):
                        second.execute("DELETE FROM seen_models WHERE model_key LIKE 'second%'")
                        second.execute("INSERT INTO seen_models VALUES ('second model')")
            return len(attempts)

        assert lake_backend.retry_conflicts(replace_models, "test", sleep=lambda _: None) == 2
        assert sorted(first.execute("SELECT model_key FROM seen_models").fetchall()) == [
            ("first model",), ("second model",)]  # once each, the old rows replaced

        def always_conflicting() -> None:
            with transaction(first):
                first.execute("DELETE FROM seen_models WHERE model_key = 'first model'")
                with transaction(second):
                    second.execute("DELETE FROM seen_models WHERE model_key = 'second model'")
                    second.execute("INSERT INTO seen_models VALUES ('second model')")

        with pytest.raises(RunError, match=r"^test met another writer's commit 3 times"):
            lake_backend.retry_conflicts(always_conflicting, "test", attempts=3,
                                         sleep=lambda _: None)


def test_the_catalog_password_is_refused_in_partner_yaml(lake, tmp_path):
    catalog, data_path = lake
    home = tmp_path / "ws"
    (home / "config").mkdir(parents=True)
    on_ducklake(home, catalog + " password=hunter2", data_path)
    done = polyrecon(home, "status")
    assert done.returncode != 0
    assert "PGPASSWORD" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert re.search(r"partner\.yaml", done.stderr)


def test_a_waiting_run_gets_the_lock_when_its_holder_ends_and_gives_up_at_its_wait(
        template, lake, tmp_path):
    import threading

    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake)
    workspace = Workspace.resolve(home)
    customer = KEPT_CUSTOMERS[0]
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace_lock(workspace, "test-holder", customer_id=customer):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        refused = polyrecon(home, *RUN, "--wait", "2")
        assert refused.returncode == 1
        assert "another polyrecon run" in refused.stderr
        assert time.monotonic() - started >= 2
        waiter = start(home, "ingest", "--month", MONTH, "--customer", customer, "--wait", "120")
        _wait_for_waiting_lock(lake[0], waiter)
        assert waiter.poll() is None  # still waiting for the holder, in PostgreSQL's queue
        release.set()
        _out, err = waiter.communicate(timeout=300)
        assert waiter.returncode == 0, err[-3000:]
    finally:
        release.set()
        holder.join(30)


def test_a_lens_pull_on_ducklake_keeps_its_tenants_region_for_the_report(lake, tmp_path,
                                                                          monkeypatch):
    """Issue 31 on DuckLake: each pull's tenant region is kept in the lake's `lens_pulls` as in
    the embedded warehouse (tests/test_tenants.py), and the report's method note names it."""
    from lens_partner import partner_lens, partner_workspace

    month = str(Month.of(date.today()))
    with partner_lens() as (fake, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        home = on_ducklake(partner_workspace(tmp_path, fake).home, *lake)
        done = polyrecon_here(home, "run", "--month", month)
    assert done.returncode == 1, done.stderr[-3000:]  # Ghost's grant is missing; the rest went on
    with open_warehouse(Workspace.resolve(home), read_only=True) as con:
        pulls = con.execute("SELECT customer_id, outcome, region FROM lens_pulls "
                            "ORDER BY customer_id").fetchall()
    assert pulls == [("acme", "loaded", "EU-1"), ("bolt", "loaded", "US-1"),
                     ("ghost", "failed", None), ("own", "loaded", "US-1")]
    report = (home / "reports" / month / "bolt.html").read_text(encoding="utf-8")
    assert "Poly Lens region: US-1." in report
