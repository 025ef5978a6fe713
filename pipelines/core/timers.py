"""Time spent per pipeline stage in this process: logged at the end of a command, and read by
the benchmark (benchmarks/run.py) to split a whole run into its stages; time per SQL file,
for the benchmark's profile (benchmarks/profile_ingest.py)."""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_SECONDS: dict[str, float] = defaultdict(float)
_STATEMENTS: dict[str, float] = defaultdict(float)


@contextmanager
def _adding_to(totals: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[name] += time.perf_counter() - started


def timed(stage: str):
    """A pipeline stage: intake, validation, load, reconcile, render."""
    return _adding_to(_SECONDS, stage)


def summary() -> str:
    """`intake 3.21 s · validation 0.52 s · …`, in the order the stages first ran."""
    return " · ".join(f"{stage} {seconds:.2f} s" for stage, seconds in _SECONDS.items())


def timed_statement(name: str):
    """A SQL file run by warehouse.run_sql."""
    return _adding_to(_STATEMENTS, name)


def stage_seconds() -> dict[str, float]:
    return dict(_SECONDS)


def statement_seconds() -> dict[str, float]:
    """Seconds per SQL file run, slowest first."""
    return dict(sorted(_STATEMENTS.items(), key=lambda item: -item[1]))
