"""Progress on long steps: a bar on a terminal, plain log lines otherwise (Airflow, CI, pipes)."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

log = logging.getLogger("polyrecon")
T = TypeVar("T")


def track(items: Sequence[T], label: str) -> Iterator[T]:
    total = len(items)
    if total == 0:
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track as rich_track

        yield from rich_track(items, description=label, total=total,
                              console=Console(stderr=True), transient=True)
        return
    step = max(1, total // 10)
    for done, item in enumerate(items, start=1):
        yield item
        if done % step == 0 or done == total:
            log.info("%s: %d/%d", label, done, total)
