"""Time spent per pipeline stage in this process: logged at the end of a command, and read by
the benchmark (benchmarks/run.py) to split a whole run into its stages; time per SQL file,
for the benchmark's profile (benchmarks/profile_ingest.py)."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

_SECONDS: dict[str, float] = defaultdict(float)
_STATEMENTS: dict[str, float] = defaultdict(float)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        _SECONDS[stage] += time.perf_counter() - started


def summary() -> str:
    """`intake 3.21 s · validation 0.52 s · …`, in the order the stages first ran."""
    return " · ".join(f"{stage} {seconds:.2f} s" for stage, seconds in _SECONDS.items())


@contextmanager
def timed_statement(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        _STATEMENTS[name] += time.perf_counter() - started


def stage_seconds() -> dict[str, float]:
    return dict(_SECONDS)


def statement_seconds() -> dict[str, float]:
    """Seconds per SQL file run, slowest first."""
    return dict(sorted(_STATEMENTS.items(), key=lambda item: -item[1]))
