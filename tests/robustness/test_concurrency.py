"""Two runs at once on one workspace: the second gives up with one sentence naming the first
(or waits for it with --wait); a dead holder's lock is no obstacle; `status` needs no lock."""
import json
import os
import signal
import subprocess
import sys
import time

from harness import (
    MONTH,
    ROOT,
    assert_same,
    copy_workspace,
    fingerprint,
    polyrecon,
    polyrecon_here,
    start,
)

RUN = ("run", "--month", MONTH)


def _wait_for_lock_holder(home, process: subprocess.Popen, timeout=300):
    """Until the lock file names `process` as its holder (a label another process left there
    does not count)."""
    lock = home / ".polyrecon.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the first run ended early: {process.communicate()}"
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == process.pid:
                return
        except (FileNotFoundError, ValueError):
            pass  # not made yet, or caught while its label is written
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_a_second_run_exits_1_with_one_sentence_and_the_first_ends_as_a_clean_run(
        demo_template, clean_run, tmp_path, reliability):
    _, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    first = start(home, *RUN)
    try:
        _wait_for_lock_holder(home, first)
        # Stopped while it holds the lock, the first run cannot finish before the others have
        # tried, however slow they are to start; it goes on once they have.
        os.kill(first.pid, signal.SIGSTOP)
        try:
            for args in (RUN, ("ingest", "--month", MONTH), ("reconcile", "--month", MONTH),
                         ("report", "--month", MONTH), ("rebuild",)):
                second = polyrecon(home, *args)
                assert second.returncode == 1, second.stderr
                [line] = second.stderr.strip().splitlines()
                assert f"another polyrecon run (PID {first.pid}, `run`, started " in line
                assert "Traceback" not in second.stderr
                assert "duckdb" not in line.lower()
            status = polyrecon(home, "status")  # read-only: no lock, no traceback either way
            assert "Traceback" not in status.stderr
        finally:
            os.kill(first.pid, signal.SIGCONT)
    finally:
        _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert_same(fingerprint(home), clean)
    reliability("a second `run`, `ingest`, `reconcile`, `report` or `rebuild` while a `run` "
                "works", "workspace lock", "exit 1 with one sentence naming the first run's "
                                           "PID; the first ended as an undisturbed run")


def test_with_wait_the_second_run_waits_and_sends_nothing_twice(demo_template, clean_run,
                                                                  tmp_path, reliability):
    _, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    first = start(home, *RUN)
    _wait_for_lock_holder(home, first)
    second = start(home, *RUN, "--wait", "300")
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    assert "E-mail: 0 new, 0 sent" in out  # the second found everything done
    assert_same(fingerprint(home), clean)
    reliability("two `run`s started together, the second with `--wait`", "workspace lock",
                "the second waited, then found the work done and sent nothing")


def test_a_dead_holders_lock_is_no_obstacle(demo_template, clean_run, tmp_path, reliability):
    _, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pipelines.warehouse.run_lock import workspace_lock; "
        "from pipelines.core.workspace import Workspace\n"
        "with workspace_lock(Workspace.resolve(sys.argv[1]), 'run'):\n"
        "    print('held', flush=True); time.sleep(600)"), str(home)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert str(holder.pid) in (home / ".polyrecon.lock").read_text()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    assert str(holder.pid) in (home / ".polyrecon.lock").read_text()  # stale, left behind
    done = polyrecon_here(home, *RUN)  # the next run, in this process: its lock is tested
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same(fingerprint(home), clean)
    reliability("a stale lock file naming a process killed with SIGKILL", "workspace lock",
                "the OS released the dead process's lock; the next run took it and finished")


def test_a_writer_outside_polyrecon_holding_duckdb_gives_one_sentence(tmp_path, demo_template,
                                                                      reliability):
    """The DuckDB file lock stays the backstop: a process holding the warehouse open for
    writing (not a polyrecon run, so not under the workspace lock)."""
    home = copy_workspace(demo_template, tmp_path / "ws")
    assert polyrecon_here(home, "ingest", "--month", MONTH).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        "print('open', flush=True); time.sleep(600)"), str(home / "warehouse.duckdb")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        for args in (("reconcile", "--month", MONTH), ("status",)):
            done = polyrecon(home, *args)
            assert done.returncode == 1
            assert done.stderr.strip().splitlines()[-1].startswith(
                f"the warehouse {home / 'warehouse.duckdb'} is in use by another polyrecon "
                f"process"), done.stderr
            assert "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert polyrecon_here(home, "reconcile", "--month", MONTH).returncode == 0
    reliability("another process holding the DuckDB file open for writing", "warehouse",
                "exit 1, one sentence, nothing written; the same command afterwards worked")
