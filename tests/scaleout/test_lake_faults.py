"""Faults of DuckLake's own servers during a run (issue 29, 3 and 9): the catalog's PostgreSQL
restarted or stopped, the data folder unwritable. The workspace lock is a PostgreSQL advisory
lock, so a restart ends it while the run goes on (DuckDB's connections reconnect) and another
run may take it: the run must stop before its next write, and no two senders may ever send
one message (DuckLake has no unique keys). Each fault ends in one line and exit 1 with nothing
lost, and the next run ends as the undisturbed embedded run, every e-mail delivered once.

Where a run is to meet a fault at a given point, it is paused (SIGSTOP) at a line of its
progress, the fault made, and the run let go on (SIGCONT): the same point every time, no
sleeps."""
from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager

import psycopg
import yaml
from fake_smtp import Inbox, Server
from harness import (
    MONTH,
    Watched,
    assert_same,
    copy_workspace,
    fingerprint,
    polyrecon,
    polyrecon_here,
)
from servers import on_ducklake

from pipelines.core.config import load_config
from pipelines.core.workspace import Workspace
from pipelines.delivery.mail import deliver_waiting
from pipelines.warehouse import lake as lake_backend
from pipelines.warehouse.connection import open_warehouse

RUN = ("run", "--month", MONTH)
INTAKE = "Taking in inbox files: "  # the progress of intake: a line per file or per tenth


def _with_smtp(home, port: int):
    partner = home / "config" / "partner.yaml"
    settings = yaml.safe_load(partner.read_text(encoding="utf-8"))
    settings["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False,
                        "from": "reports@partner.example"}
    partner.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
    return home


def _without(found: dict, *keys: str) -> dict:
    return {key: value for key, value in found.items() if key not in keys}


def _delivered(inbox: Inbox) -> Counter:
    """What the SMTP server received, as the fingerprint counts the outbox's files (less the
    month folder, which only a file has)."""
    return Counter((m["Subject"], m["To"], m["Cc"] or "",
                    tuple(sorted(a.get_filename() for a in m.iter_attachments())))
                   for _, m in inbox.messages)


def _written(outbox: list) -> Counter:
    return Counter({key[1:]: count for key, count in outbox})


def _assert_like_the_embedded_run(home, inbox: Inbox, embedded: dict) -> None:
    """The same files, ledgers and inputs as the embedded run, which wrote its e-mails to
    outbox/: each of them received by the SMTP server, once."""
    found = fingerprint(home)
    assert_same(_without(found, "status", "outbox"), _without(embedded, "status", "outbox"))
    assert found["outbox"] == []
    assert _delivered(inbox) == _written(embedded["outbox"])
    assert set(_delivered(inbox).values()) == {1}


@contextmanager
def _paused_at(run: Watched, prefix: str):
    """The run stopped (SIGSTOP) once it printed a line starting with `prefix`; let go on
    when the block ends. Its lines so far are in the list yielded."""
    seen = []
    for line in run.lines(timeout=300):
        seen.append(line[1])
        if line[1].startswith(prefix):
            break
    else:
        raise AssertionError(f"the run ended before {prefix!r}: {seen[-20:]}")
    run.process.send_signal(signal.SIGSTOP)
    try:
        yield seen
    finally:
        run.process.send_signal(signal.SIGCONT)


def _error_line(lines: list[str]) -> str:
    """The run's last line, its error, after asserting it is the only one (no traceback)."""
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines[-30:])
    return lines[-1]


def _lock_is_free(catalog: str) -> bool:
    """Whether another run could take the whole-workspace lock now (taken and let go)."""
    key = lake_backend._lock_key("workspace")
    with psycopg.connect(catalog, autocommit=True) as session:
        taken = session.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        if taken:
            session.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return taken


def test_a_run_whose_lock_died_in_a_postgresql_restart_stops_before_its_next_write(
        template, embedded_run, lake, postgres, tmp_path, reliability):
    """Issue 29, 3: a restart ended the session holding the lock; the run went on without it
    while a second run could take it, and both could send."""
    catalog = lake[0]
    server = Server()
    server.start()
    try:
        home = _with_smtp(on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake),
                          server.port)
        first = Watched(home, *RUN)
        try:
            with _paused_at(first, INTAKE):
                postgres.restart()
                assert _lock_is_free(catalog)  # what a second run would find
            lines = [text for _, text in first.lines(timeout=300)]
        finally:
            first.close()
        assert first.process.returncode == 1
        assert _error_line(lines) == (
            "`run` lost its lock on the DuckLake warehouse: the catalog's PostgreSQL "
            "restarted or stopped (or the connection to it broke) while this run held the "
            "lock; nothing more was written: run again")
        assert server.inbox.messages == []
        # The next run, in this process (here and below): what it finds is what is tested.
        again = polyrecon_here(home, *RUN)
        assert again.returncode == 0, again.stderr[-3000:]
    finally:
        server.stop()
    _assert_like_the_embedded_run(home, server.inbox, embedded_run[1])
    reliability("the DuckLake catalog's PostgreSQL restarted while `run` held the lock "
                "(taking in files)", "DuckLake workspace lock",
                "the run stopped before its next write: exit 1, one line; the next run ended "
                "as an undisturbed run, each e-mail delivered once")


class _HeldInbox(Inbox):
    """Holds the answer to each message's data until a second message's data came (another
    sender is at work) or a sender finished (`others_done`): so two senders of one queued
    message both reach SMTP with it, unless something keeps the second from sending it."""

    def __init__(self):
        super().__init__()
        self.others_done = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        deadline = time.monotonic() + 120
        while len(self.messages) < 2 and not self.others_done.is_set() \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return answer


def test_two_senders_of_the_same_queued_messages_send_each_once(template, lake, tmp_path,
                                                                 reliability):
    """Issue 29, 3: with two senders at once (two processes that each believe they hold the
    lock), both read a message as queued and both handed it to SMTP; DuckLake's ledger has
    no unique key to stop the second. Here two senders in two threads, without the lock."""
    closed = Server()  # nothing listens yet: the run leaves every message queued
    home = _with_smtp(on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake),
                      closed.port)
    queued = polyrecon_here(home, *RUN)
    assert queued.returncode == 1, queued.stderr[-3000:]
    inbox = _HeldInbox()
    server = Server()
    server.inbox = inbox
    config = load_config(Workspace.resolve(_with_smtp(home, server.port)))
    with open_warehouse(config.workspace, read_only=True) as con:
        keys = sorted(k for (k,) in con.execute(
            "SELECT message_key FROM mail_ledger WHERE status = 'queued'").fetchall())
    assert len(keys) >= 2
    server.start()
    errors = []
    gate = threading.Barrier(2)

    def sender() -> None:
        try:
            gate.wait(60)
            deliver_waiting(config, None, None)
        except BaseException as error:  # noqa: BLE001 - asserted below
            errors.append(error)
        finally:
            inbox.others_done.set()  # the other sender's held message may go on

    try:
        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    finally:
        server.stop()
    assert sorted(Counter(m["Subject"] for _, m in inbox.messages).values()) == [1] * len(keys)
    assert errors == []
    with open_warehouse(config.workspace, read_only=True) as con:
        assert con.execute("SELECT DISTINCT status FROM mail_ledger").fetchall() == [("sent",)]
    reliability("two senders of the same queued e-mails at once (each believing it holds the "
                "lock)", "DuckLake e-mail ledger",
                "each message went to SMTP once: it is claimed first in a PostgreSQL table "
                "with a primary key; the ledger ended as after one sender")


class _LostInbox(Inbox):
    """Holds the answer to the first message's data until `let_go`, and never keeps that
    message (as a server whose client went before it took it): what a sender killed while
    handing a message over leaves, as far as it can know."""

    def __init__(self):
        super().__init__()
        self.handed, self.let_go = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.handed.is_set():
            return await super().handle_DATA(server, session, envelope)
        self.handed.set()
        deadline = time.monotonic() + 300
        while not self.let_go.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return "451 4.3.0 the connection went before the message was taken"


def test_a_message_whose_sender_died_handing_it_to_smtp_waits_for_a_person(
        template, embedded_run, lake, tmp_path, reliability):
    """Issue 29, 3: a claimed message whose sender died before recording the server's
    answer may or may not have gone out. It must neither block the message for ever nor be
    sent twice silently: the next run says so in one line and leaves it waiting; the
    `approve` that line names sends it, once."""
    inbox = _LostInbox()
    server = Server()
    server.inbox = inbox
    server.start()
    try:
        home = _with_smtp(on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake),
                          server.port)
        killed = Watched(home, *RUN)
        try:
            assert inbox.handed.wait(300), "the run never handed a message to SMTP"
            assert killed.kill()
        finally:
            inbox.let_go.set()
            killed.close()
        again = polyrecon_here(home, *RUN)
        assert again.returncode == 0, again.stderr[-3000:]
        [said] = [line for line in again.stderr.splitlines() if "may have gone out" in line]
        approve = said.split("`")[-2]
        assert approve.startswith(f"approve --month {MONTH}")
        assert ", 1 waiting for approval" in again.stdout
        sent = len(inbox.messages)
        approved = polyrecon_here(home, *approve.split())
        assert approved.returncode == 0, approved.stderr[-3000:]
        assert len(inbox.messages) == sent + 1
    finally:
        server.stop()
    _assert_like_the_embedded_run(home, inbox, embedded_run[1])
    reliability("SIGKILL of `run` while it hands an e-mail to SMTP (DuckLake)",
                "DuckLake e-mail ledger",
                "the next run sent everything else and left that message waiting, saying in "
                "one line it may have gone out and which `approve` sends it; approved, it "
                "went out once")


def _inbox(home) -> list[str]:
    return sorted(p.relative_to(home).as_posix() for p in (home / "inbox").rglob("*")
                  if p.is_file())


def _uploads(home) -> Counter:
    """Every upload's content, wherever intake put it (inbox/, its .claimed/, archive/,
    quarantine/): what must survive a run that stopped."""
    return Counter(hashlib.sha256(p.read_bytes()).hexdigest()
                   for folder in ("inbox", "archive", "quarantine")
                   for p in (home / folder).rglob("*")
                   if p.is_file() and not p.name.endswith(".reason.txt"))


def test_postgresql_stopped_while_files_are_taken_in_is_one_line_and_the_next_run_ends_clean(
        template, embedded_run, lake, postgres, tmp_path, reliability):
    """Issue 29, 9: the catalog's PostgreSQL stopped mid-intake ended `run` in a traceback."""
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake)
    uploads = _uploads(home)
    first = Watched(home, *RUN)
    try:
        with _paused_at(first, INTAKE):
            postgres.stop()
        lines = [text for _, text in first.lines(timeout=300)]
    finally:
        first.close()
        postgres.start()
    assert first.process.returncode == 1
    error = _error_line(lines)
    assert re.search(r"run (the same command )?again$", error), lines[-30:]
    assert "PostgreSQL" in error
    assert str(postgres.port) not in error  # the catalog's connection string is not shown
    assert "user=" not in error
    assert _uploads(home) == uploads  # in the inbox, taken in, or claimed for the next run
    again = polyrecon_here(home, *RUN)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(_without(fingerprint(home), "status"), _without(embedded_run[1], "status"))
    reliability("the DuckLake catalog's PostgreSQL stopped while `run` took files in",
                "DuckLake catalog", "exit 1, one line; once it was back, `run` ended as an "
                "undisturbed run")


def test_a_data_folder_that_cannot_be_written_is_one_line_and_the_next_run_ends_clean(
        template, embedded_run, lake, tmp_path, reliability):
    """Issue 29, 9: a DuckLake data folder that refused a write ended `run` in a traceback.
    Refused here by a file where the lake's folder for its tables belongs (permissions do
    not stop the root user the tests may run as); the system refuses both alike."""
    catalog, _ = lake
    data = tmp_path / "lake-data"
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), catalog, str(data))
    data.mkdir()
    (data / "main").write_text("in the way\n")
    inbox = _inbox(home)
    failed = polyrecon(home, *RUN)
    assert failed.returncode == 1, failed.stderr[-3000:]
    error = _error_line(failed.stderr.splitlines())
    assert error.startswith(f"cannot read or write the DuckLake data at {data}/ (")
    assert error.endswith("run the same command again")
    assert _inbox(home) == inbox  # nothing taken in
    (data / "main").unlink()
    done = polyrecon_here(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same(_without(fingerprint(home), "status"), _without(embedded_run[1], "status"))
    reliability("the DuckLake data folder cannot be written (a file in the way, no "
                "permission)", "DuckLake data", "exit 1 with one line naming it; once it could "
                "be written, `run` ended as an undisturbed run")
