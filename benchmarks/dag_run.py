"""Benchmark: the monthly DAG under real Airflow (`airflow dags test`), at several customer counts.

Run: `python benchmarks/dag_run.py [--customers 100,1000] [--devices 50]` (benchmarks/run.py
runs it for results.md). For each count it builds a partner (benchmarks/partner_workspace.py,
the same devices per customer, so the work per customer is constant), takes the month in with
`ingest` (outside the DAG: the DAG's own intake is measured by run.py), then runs the DAG once
for the month on a fresh Airflow metadata DB, with POLYRECON_TIMINGS set: every task appends its
seconds and its stages (pipelines/core/timers.py). It prints, as JSON, the run's wall time, the
time per task name (tasks, total seconds, stage seconds), Airflow's own share (wall time less
the tasks' time) and how many times the run computed a month.

`airflow dags test` runs the tasks one after another in one process: the figures are the work,
not the parallel speed-up a real scheduler gives the render tasks.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MONTH = "2026-10"
DAG_ID = "polylens_monthly_reconciliation"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_TIMEOUT = 4 * 3600  # seconds one DAG run may take before the benchmark gives up


def _airflow(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`airflow {' '.join(args)}` failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return done


def measure(customers: int, devices: int, scratch: Path) -> dict:
    from partner_workspace import build_partner_workspace

    home = scratch / f"partner-{customers}"
    build_partner_workspace(home, MONTH, customers, devices)
    ingest = subprocess.run([sys.executable, "-m", "pipelines", "ingest", "--home", str(home)],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    if ingest.returncode != 0:
        raise SystemExit(f"ingest failed:\n{ingest.stderr[-3000:]}")
    timings = scratch / f"timings-{customers}.jsonl"
    env = {**os.environ, "AIRFLOW_HOME": str(scratch / f"airflow-{customers}"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "PYTHONPATH": str(ROOT), "POLYRECON_HOME": str(home),
           "POLYRECON_TIMINGS": str(timings), "PYTHONWARNINGS": "ignore"}
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", "polyrecon_duckdb", "1", "polyrecon DuckDB writer")
    started = time.perf_counter()
    done = _airflow(env, "dags", "test", DAG_ID, "--conf", json.dumps({"month": MONTH}),
                    timeout=RUN_TIMEOUT)
    wall = time.perf_counter() - started
    if "state=success" not in done.stdout + done.stderr:
        raise SystemExit(f"the DAG run did not succeed:\n{done.stderr[-3000:]}")
    return summarise(customers, wall, [json.loads(line) for line in
                                       timings.read_text().splitlines()])


def summarise(customers: int, wall: float, tasks: list[dict]) -> dict:
    per_task: dict[str, dict] = defaultdict(lambda: {"tasks": 0, "seconds": 0.0,
                                                     "stages": defaultdict(float)})
    months_computed = 0
    for task in tasks:
        entry = per_task[task["task"]]
        entry["tasks"] += 1
        entry["seconds"] += task["seconds"]
        for stage, (seconds, runs) in task["stages"].items():
            entry["stages"][stage] += seconds
            if stage == "reconcile":
                months_computed += runs
    in_tasks = sum(entry["seconds"] for entry in per_task.values())
    return {"customers": customers, "wall": wall, "in_tasks": in_tasks,
            "airflow": wall - in_tasks, "months_computed": months_computed,
            "tasks": {name: {**entry, "stages": dict(entry["stages"])}
                      for name, entry in per_task.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="100,1000",
                        help="customer counts, comma separated (default: %(default)s)")
    parser.add_argument("--devices", type=int, default=50, help="devices per customer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="polyrecon-dag-bench-") as scratch:
        for customers in sorted(int(c) for c in args.customers.split(",")):
            print(json.dumps(measure(customers, args.devices, Path(scratch))), flush=True)


if __name__ == "__main__":
    main()
