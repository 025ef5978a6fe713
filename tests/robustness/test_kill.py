"""SIGKILL at any moment: the next run finishes the work and ends exactly as an undisturbed run.

Each case copies the same small demo workspace, starts the real CLI as a subprocess, kills it
with SIGKILL (at a moment named by its progress output, or after a seeded random delay spread
over a whole run), possibly again on the next attempt, then lets `run` finish and compares
everything with the undisturbed run (conftest.fingerprint). `SOAK_KILLS=200 make soak` kills
at many more random moments.
"""
import os
import random
import re
import select
import shutil
import signal
import time

import pytest
from harness import MONTH, assert_same, copy_workspace, fingerprint, polyrecon, start

RUN = ("run", "--month", MONTH)
SOAK_KILLS = int(os.environ.get("SOAK_KILLS", "0"))


def _kill_when(home, args, pattern: str, timeout: float = 120) -> bool:
    """Start `args`, SIGKILL it as soon as a line of its output matches; False if it ended
    first."""
    process = start(home, *args)
    deadline = time.monotonic() + timeout
    wanted = re.compile(pattern)
    streams = [process.stdout, process.stderr]
    try:
        while streams and time.monotonic() < deadline:
            ready, _, _ = select.select(streams, [], [], 0.5)
            for stream in ready:
                line = stream.readline()
                if not line:
                    streams.remove(stream)
                elif wanted.search(line):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return True
        return False
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def _kill_after(home, args, seconds: float) -> bool:
    process = start(home, *args)
    try:
        process.wait(timeout=seconds)
        return False
    except Exception:  # noqa: BLE001 - still running: the moment has come
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    finally:
        process.stdout.close()
        process.stderr.close()


def _finish(home):
    done = polyrecon(home, *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr


# Chains of (label for docs/reliability.md, command, output line at which it is killed): each
# attempt is killed at the next moment, then `run` finishes. Later attempts find the work the
# earlier ones left: claimed files, committed but unarchived files, queued e-mails.
CHAINS = {
    "run": [
        ("SIGKILL of `run` right after a file is quarantined", RUN, r"^quarantined inbox/"),
        ("SIGKILL of `run` right after a file is loaded", RUN, r"^loaded inbox/"),
        ("SIGKILL of `run` part way through the inbox", RUN, r"Taking in inbox files: \d+/"),
        ("SIGKILL of `run` while reconciling", RUN, r"Reconciling \S+: 3/"),
        ("SIGKILL of `run` while rendering the reports", RUN, r"Rendering reports for \S+: 2/"),
        ("SIGKILL of `run` after the last customer report (portfolio, e-mail)", RUN,
         r"Rendering reports for \S+: 4/4"),
    ],
    "steps": [
        ("SIGKILL of `ingest` alone, part way", ("ingest", "--month", MONTH),
         r"^loaded inbox/"),
        ("SIGKILL of `reconcile` alone", ("reconcile", "--month", MONTH),
         r"Reconciling \S+: 1/"),
        ("SIGKILL of `report` alone", ("report", "--month", MONTH),
         r"Rendering reports for \S+: 1/"),
    ],
}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_killed_at_named_moments_then_run_ends_as_a_clean_run(
        demo_template, clean_run, tmp_path, reliability, chain):
    _clean_home, clean, _ = clean_run
    home = copy_workspace(demo_template, tmp_path / "ws")
    for label, args, pattern in CHAINS[chain]:
        assert _kill_when(home, args, pattern), f"{label}: the run ended before '{pattern}'"
    _finish(home)
    assert_same(fingerprint(home), clean)
    for label, args, _ in CHAINS[chain]:
        reliability(label, f"`{args[0]}`", "the next attempt went on from there (killed in "
                                           "turn, then finished): same files, each input in "
                                           "one place, each e-mail once")


def test_killed_at_random_moments_several_times_in_a_row(demo_template, clean_run, tmp_path,
                                                         reliability):
    """Two workspaces, each killed three times running at seeded random moments spread over
    a whole run's duration (a killed run's next attempt is killed too), then finished."""
    _clean_home, clean, duration = clean_run
    rng = random.Random(9)
    kills = 0
    for attempt in range(2):
        home = copy_workspace(demo_template, tmp_path / f"ws{attempt}")
        for _ in range(3):
            kills += _kill_after(home, RUN, rng.uniform(0.3, duration))
        _finish(home)
        assert_same(fingerprint(home), clean)
    assert kills >= 4  # most moments fell inside the runs, not after them
    reliability("SIGKILL of `run` at 6 seeded random moments, three times in a row before it "
                "may finish", "`run`", "each attempt went on from where the last stopped; the "
                                       "final state equals an undisturbed run")


@pytest.mark.skipif(not SOAK_KILLS, reason="soak only: SOAK_KILLS=N make soak")
def test_soak_many_random_kills(demo_template, clean_run, tmp_path):
    _clean_home, clean, duration = clean_run
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    done = 0
    while done < SOAK_KILLS:
        home = copy_workspace(demo_template, tmp_path / f"soak{done}")
        for _ in range(rng.randint(1, 4)):
            _kill_after(home, rng.choice([RUN, RUN, ("ingest", "--month", MONTH)]),
                        rng.uniform(0.1, duration))
            done += 1
        _finish(home)
        assert_same(fingerprint(home), clean)
        shutil.rmtree(home)
