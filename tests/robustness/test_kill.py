"""SIGKILL at any moment: the next run finishes the work and ends exactly as an undisturbed run.

Each case copies the same small demo workspace, starts the real CLI as a subprocess, kills it
with SIGKILL (at a moment named by its progress output, or at a seeded random moment between
two of its progress lines), possibly again on the next attempt, then lets `run` finish and
compares everything with the undisturbed run (conftest.fingerprint). `SOAK_KILLS=200 make soak`
kills at many more random moments.
"""
import os
import random
import re
import shutil
from itertools import pairwise

import pytest
from harness import (
    MONTH,
    PROGRESS,
    Watched,
    assert_same,
    copy_workspace,
    fingerprint,
    polyrecon_here,
)

RUN = ("run", "--month", MONTH)
SOAK_KILLS = int(os.environ.get("SOAK_KILLS", "0"))


def _kill_when(home, args, pattern: str, timeout: float = 300) -> bool:
    """Start `args`, SIGKILL it as soon as a line of its output matches; False if it ended
    first."""
    process = Watched(home, *args)
    wanted = re.compile(pattern)
    try:
        for _seconds, line in process.lines(timeout):
            if wanted.search(line):
                return process.kill()
        return False
    finally:
        process.close()


def _kill_between(home, args, anchor: str, delay: float, timeout: float = 300) -> bool:
    """Start `args`; once it prints the progress line `anchor`, SIGKILL it `delay` seconds
    later, or at its next progress line if that comes first: a moment inside the run however
    fast or slow the machine is. False if it ended without printing `anchor`, or before the
    kill."""
    process = Watched(home, *args)
    try:
        for seconds, line in process.lines(timeout):
            if line == anchor:
                until = seconds + delay
                while (item := process.next_line(until)) is not None \
                        and not PROGRESS.match(item[1]):
                    pass
                return not process.ended and process.kill()
        return False
    finally:
        process.close()


# Progress lines every attempt of `run` prints, however much of the work an earlier one did
# (not the inbox's: a later attempt finds less there, or nothing); `ingest` prints only those.
EVERY_RUN = (f"Reconciling {MONTH}:", f"Rendering reports for {MONTH}:")
INBOX = ("Taking in inbox files:",)


def _draw(rng: random.Random, progress: list[tuple[float, str]], lines: tuple[str, ...] = ("",)
          ) -> tuple[str, float]:
    """A seeded random moment of an undisturbed run: one of its progress lines starting with
    one of `lines` (not its last: a kill after that could come after the run's end), then a
    part of the time to its next progress line."""
    line, gap = rng.choice([(line, later - seconds) for (seconds, line), (later, _)
                            in pairwise(progress) if line.startswith(lines)])
    return line, rng.uniform(0, gap)


def _finish(home):
    """The run after the kills, in this process: what it finds on disk is what is tested."""
    done = polyrecon_here(home, *RUN)
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
    """Two workspaces, each killed three times running at seeded random moments between the
    progress lines of a run (a killed run's next attempt is killed too), then finished."""
    _clean_home, clean, progress = clean_run
    rng = random.Random(9)
    kills = 0
    for attempt in range(2):
        home = copy_workspace(demo_template, tmp_path / f"ws{attempt}")
        for turn in range(3):
            # The first attempt prints what the undisturbed run printed; later ones find work
            # done, and are killed among the lines every run prints.
            kills += _kill_between(home, RUN, *_draw(rng, progress, EVERY_RUN if turn else ("",)))
        _finish(home)
        assert_same(fingerprint(home), clean)
    assert kills == 6  # every moment fell inside its run, after its work began
    reliability("SIGKILL of `run` at 6 seeded random moments, three times in a row before it "
                "may finish", "`run`", "each attempt went on from where the last stopped; the "
                                       "final state equals an undisturbed run")


@pytest.mark.skipif(not SOAK_KILLS, reason="soak only: SOAK_KILLS=N make soak")
def test_soak_many_random_kills(demo_template, clean_run, tmp_path):
    _clean_home, clean, progress = clean_run
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    done = 0
    while done < SOAK_KILLS:
        home = copy_workspace(demo_template, tmp_path / f"soak{done}")
        for turn in range(rng.randint(1, 4)):
            # `ingest` is killed among the inbox's lines, or not at all (it ends first) when an
            # earlier attempt took in what it was killed at.
            args = rng.choice([RUN, RUN, ("ingest", "--month", MONTH)])
            lines = INBOX if args != RUN else EVERY_RUN if turn else ("",)
            _kill_between(home, args, *_draw(rng, progress, lines))
            done += 1
        _finish(home)
        assert_same(fingerprint(home), clean)
        shutil.rmtree(home)
