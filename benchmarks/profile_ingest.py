"""The profile behind benchmarks/results.md: `ingest` of a workspace, in this process, with the
time per stage and per SQL file (pipelines/core/timers.py), printed as JSON.

Run: `python benchmarks/profile_ingest.py <workspace>` (benchmarks/run.py does, on a copy of
its largest partner).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Importable only once the repository is on the path (a script, not an installed package).
from pipelines.cli import main  # noqa: E402
from pipelines.core import timers  # noqa: E402

if __name__ == "__main__":
    started = time.perf_counter()
    code = main(["ingest", "--home", sys.argv[1]])
    print(json.dumps({"exit": code, "seconds": time.perf_counter() - started,
                      "stages": timers.stage_seconds(),
                      "statements": timers.statement_seconds()}))
