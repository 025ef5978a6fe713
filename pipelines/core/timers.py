"""Time spent per pipeline stage in this process: logged at the end of a command, and read by
the benchmark (benchmarks/run.py) to split a whole run into its stages; time per SQL file,
for the benchmark's profile (benchmarks/profile_ingest.py); and, with POLYRECON_TIMINGS naming
a file, one line per Airflow task (`recorded`): the DAG benchmark's per-task split, and the
test that a DAG run computes its month once however many customers it renders."""
from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_SECONDS: dict[str, float] = defaultdict(float)
_RUNS: Counter = Counter()
_STATEMENTS: dict[str, float] = defaultdict(float)
TIMINGS_FILE = "POLYRECON_TIMINGS"


@contextmanager
def _adding_to(totals: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[name] += time.perf_counter() - started


def timed(stage: str):
    """A pipeline stage: intake, validation, load, reconcile (a month computed), render."""
    _RUNS[stage] += 1
    return _adding_to(_SECONDS, stage)


def summary(since: dict[str, float] | None = None) -> str:
    """`intake 3.21 s · validation 0.52 s · …`, in the order the stages first ran; with `since`
    (what `stage_seconds` said before), only what ran after it: a process that runs several
    commands (a test, an Airflow worker running tasks in-process) tells each its own time."""
    since = since or {}
    return " · ".join(f"{stage} {seconds - since.get(stage, 0):.2f} s"
                      for stage, seconds in _SECONDS.items() if seconds > since.get(stage, 0))


def timed_statement(name: str):
    """A SQL file run by warehouse.run_sql."""
    return _adding_to(_STATEMENTS, name)


def stage_seconds() -> dict[str, float]:
    return dict(_SECONDS)


def statement_seconds() -> dict[str, float]:
    """Seconds per SQL file run, slowest first."""
    return dict(sorted(_STATEMENTS.items(), key=lambda item: -item[1]))


@contextmanager
def recorded(task: str, map_index: int = -1) -> Iterator[None]:
    """One JSON line appended to the file POLYRECON_TIMINGS names (nothing without it): the
    task, when it started, its seconds, and the seconds and runs of each stage within it."""
    target = os.environ.get(TIMINGS_FILE)
    if not target:
        yield
        return
    seconds, runs = dict(_SECONDS), Counter(_RUNS)
    started, wall = time.time(), time.perf_counter()
    try:
        yield
    finally:
        stages = {stage: [round(total - seconds.get(stage, 0), 4), _RUNS[stage] - runs[stage]]
                  for stage, total in _SECONDS.items() if _RUNS[stage] - runs[stage]}
        line = json.dumps({"task": task, "map_index": map_index, "started": round(started, 3),
                           "seconds": round(time.perf_counter() - wall, 4), "stages": stages})
        with open(target, "a", encoding="utf-8") as timings:
            timings.write(line + "\n")
