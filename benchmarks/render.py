"""Benchmark: rendering one customer's report (HTML + PDF) on the demo data.

Run: `.venv/bin/python benchmarks/render.py` (or `make bench-render`). Target (issue 5): under
0.5 s per customer, median. The first render pays the imports (WeasyPrint, matplotlib) and is
shown apart.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.config import load_config  # noqa: E402
from pipelines.demo_data import build_demo_workspace  # noqa: E402
from pipelines.jobs import run_month  # noqa: E402
from pipelines.months import Month  # noqa: E402
from pipelines.render import render_month  # noqa: E402
from pipelines.workspace import Workspace  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        demo = build_demo_workspace(Path(root), "2026-10")
        config = load_config(Workspace.resolve(root))
        for month in demo.months:
            monthly = run_month(config, Month.parse(month), publish=False)
        times = []
        for customer_id in demo.customer_ids:
            started = time.perf_counter()
            outcome = render_month(config, monthly.result.month, customer_id, monthly.result)
            times.append(time.perf_counter() - started)
            assert not outcome.failed, outcome.failed
    first, rest = times[0], times[1:]
    print(f"customers rendered   {len(times)}")
    print(f"first (with imports) {first:.2f} s")
    print(f"median               {statistics.median(rest):.2f} s   (target: under 0.5 s)")
    print(f"slowest              {max(rest):.2f} s")


if __name__ == "__main__":
    main()
