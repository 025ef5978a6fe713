"""Benchmark: the monthly job against the physical floor, at several partner sizes.

Run: `make bench` (or `.venv/bin/python benchmarks/run.py [--sizes 100000,1000000]`). For each
size it generates a partner with the demo generator (5,000 devices per customer, one month),
then measures as whole processes, each with its peak memory (RSS):
- the floor: DuckDB alone reading the same CSV files and counting distinct serials per file
  and model; and a plain pandas script doing the same counting (benchmarks/counting.py);
- the pipeline: `ingest` (split by its in-process timers into intake, validation and load),
  `reconcile`, and `report --customer` for one customer; plus the median time to render one
  customer's report in a process that renders several;
and checks the result: the devices the pipeline counted equal the floor's count, and a second
`reconcile` writes byte-identical files. Then the monthly DAG under `airflow dags test` at
100 and 1,000 customers (benchmarks/dag_run.py), with the time per task and Airflow's own
share. It prints a table and writes benchmarks/results.md with the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = (100_000, 1_000_000, 5_000_000)
DAG_CUSTOMERS = (100, 1_000)
DAG_DEVICES = 50  # per customer in the DAG benchmark: the work per customer, not per row
DEVICES_PER_CUSTOMER = 5_000
MONTH = "2026-10"
RENDER_SAMPLE = 8  # customers rendered in one process; the first pays the imports
TARGETS = """\
- 5M rows: `ingest` + `reconcile` within 2.5x the DuckDB floor, and faster than the plain
  pandas script; 1M rows: within 3x the floor;
- time grows linearly: 5M rows take at most 5.5x the time of 1M;
- peak memory under 1.5 GB at 5M rows;
- the monthly DAG: 1,000 customers cost at most 11x of 100, and a run computes its month
  once (`render`, `portfolio` and `send` never recompute it);
- report rendering under 0.5 s per customer (median);
- `python -m pipelines --help` under 1 s."""


DAG_BOUND = (
    "What bounds the DAG's miss: a render task's work grows with the partner's size, not "
    "only its customer's — 0.6 s per render at 100 customers, 1.26 s at 1,000. Each render "
    "task loads the whole configuration (contracts.yaml with every customer) and the "
    "month's whole stored result (every customer's replays, as JSON) to render one "
    "customer; at 1,000 customers that is about 0.6 s of the task. The next step: store the"
    " result per customer and read only the configuration the task needs. The month is "
    "computed once per run at both sizes.")

RENDER_BOUND = """\
Rendering is bounded by WeasyPrint: in a profile of one 5,000-device customer's report, laying
out and writing its three-to-four-page PDF takes about 0.3 s, the two term charts (matplotlib,
SVG) about 0.05 s, the warehouse queries about 0.05 s. The device lists are already capped
at 50 rows each; fewer pages would be the next step."""

BOUNDS = """\
What bounds it. The floor reads the files and counts ({floor:.1f} s, its process included). The
pipeline reads them as strictly as the reference reader (`intake/read_export_cells.sql`,
{read:.1f} s), turns cells into fields trimmed as that reader trims them
(`intake/stage_export_cells.sql`, {stage:.1f} s), keys the rows (identity, normalised model,
serial and MAC checks) and counts the devices (`raw/key_staged_rows.sql`, {keys:.1f} s), and
writes every row durably, compressed, into the warehouse (`raw/publish_staged_snapshots.sql`,
{publish:.1f} s) — the pandas script writes nothing. Each is DuckDB on both cores; fusing the
fields and the keys into one statement measured slower (DuckDB evaluates each trimmed field
again in every key expression that uses it, and carries the cells through the model join),
so the trimmed fields are materialised once. Importing Great Expectations alone takes {gx:.1f} s of
one core
(`python -c "import great_expectations"`, measured here; it overlaps the reads in a thread
but the machine has two cores, both busy with DuckDB). The rest is Python: start-up, each
file's header scan and hash, moving files. {verdict}"""


@dataclass
class Process:
    seconds: float
    peak_mb: float
    stdout: str
    stages: dict[str, float] = field(default_factory=dict)


def run_process(*args: str) -> Process:
    """Run `python args…` from the project root; wall time, peak RSS and its stage timers."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=err,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` failed ({child.returncode}):\n{stderr[-3000:]}")
    stages = {}
    timing = re.search(r"Time per stage: (.*)", stderr)
    if timing:
        stages = {name: float(value) for name, value in
                  re.findall(r"(\w+) ([\d.]+) s", timing.group(1))}
    return Process(seconds, usage.ru_maxrss / 1024, stdout, stages)


def render_sample(home: str, month: str) -> None:
    """(In a child process.) Seconds to render each of the first customers' reports."""
    from pipelines.core.config import load_config
    from pipelines.core.months import Month
    from pipelines.core.workspace import Workspace
    from pipelines.reconciliation.month import compute_month
    from pipelines.reports.render import render_month
    from pipelines.warehouse.connection import open_warehouse

    config = load_config(Workspace.resolve(home))
    with open_warehouse(config.workspace, read_only=True) as con:
        result = compute_month(con, config, Month.parse(month))
    times = []
    for customer in config.contracts.customers[:RENDER_SAMPLE]:
        started = time.perf_counter()
        outcome = render_month(config, result.month, customer.id, result)
        times.append(time.perf_counter() - started)
        assert not outcome.failed, outcome.failed
    print(json.dumps(times))


@dataclass
class SizeResult:
    rows: int
    files: int
    floor: Process
    pandas: Process
    ingest: Process
    reconcile: Process
    report: Process
    render_times: list[float]
    devices_checked: int
    profile: dict | None = None  # benchmarks/profile_ingest.py on a copy (largest size only)

    @property
    def pipeline_seconds(self) -> float:
        return self.ingest.seconds + self.reconcile.seconds

    @property
    def peak_mb(self) -> float:
        return max(self.ingest.peak_mb, self.reconcile.peak_mb, self.report.peak_mb)

    @property
    def render_median(self) -> float:
        return statistics.median(self.render_times[1:])


def gx_import_seconds() -> float:
    """Seconds to import Great Expectations in a fresh process, less Python's own start."""
    bare = statistics.median(run_process("-c", "pass").seconds for _ in range(3))
    return statistics.median(run_process("-c", "import great_expectations").seconds
                             for _ in range(3)) - bare


def measure(rows: int, scratch: Path, profile: bool) -> SizeResult:
    from partner_workspace import build_partner_workspace

    home = scratch / f"partner-{rows}"
    customers = rows // DEVICES_PER_CUSTOMER
    print(f"\n{rows:,} rows: generating {customers} customers ...", flush=True)
    demo = build_partner_workspace(home, MONTH, customers, DEVICES_PER_CUSTOMER)
    copy = scratch / f"profiled-{rows}"
    if profile:
        shutil.copytree(home, copy, copy_function=os.link)  # ingest renames, never writes
    inbox = str(home / "inbox")
    floor = run_process("benchmarks/counting.py", "duckdb", inbox)
    print(f"  floor (DuckDB)   {floor.seconds:8.2f} s", flush=True)
    pandas = run_process("benchmarks/counting.py", "pandas", inbox)
    print(f"  plain pandas     {pandas.seconds:8.2f} s", flush=True)
    ingest = run_process("-m", "pipelines", "ingest", "--home", str(home))
    print(f"  ingest           {ingest.seconds:8.2f} s  {ingest.stages}", flush=True)
    reconcile = run_process("-m", "pipelines", "reconcile", "--home", str(home), "--month", MONTH)
    print(f"  reconcile        {reconcile.seconds:8.2f} s", flush=True)
    devices = _check(home, int(floor.stdout), int(pandas.stdout))
    report = run_process("-m", "pipelines", "report", "--home", str(home), "--month", MONTH,
                         "--customer", demo.customer_ids[-1])
    times = json.loads(run_process(__file__, "render-sample", str(home), MONTH).stdout)
    print(f"  report (1)       {report.seconds:8.2f} s; median per customer "
          f"{statistics.median(times[1:]):.2f} s", flush=True)
    shutil.rmtree(home)
    profiled = None
    if profile:
        profiled = json.loads(run_process("benchmarks/profile_ingest.py", str(copy))
                              .stdout.strip().splitlines()[-1])
        shutil.rmtree(copy)
    return SizeResult(rows, customers, floor, pandas, ingest, reconcile, report, times, devices,
                      profiled)


def measure_dag(customers: int, scratch: Path) -> dict:
    from dag_run import measure as run_dag

    print(f"\nthe monthly DAG, {customers:,} customers ...", flush=True)
    run = run_dag(customers, DAG_DEVICES, scratch)
    print(f"  wall {run['wall']:.1f} s, in tasks {run['in_tasks']:.1f} s, months computed "
          f"{run['months_computed']}", flush=True)
    return run


def _check(home: Path, floor_devices: int, pandas_devices: int) -> int:
    """No correctness traded for speed: the pipeline holds every device the floor and the
    pandas script count (accessories too: the catalog's not_counted rows are kept, only not
    counted against the contract), and reconciling again writes byte-identical files (the
    rules' rerun property)."""
    import duckdb

    folder = home / "reports" / MONTH
    first = {name: (folder / name).read_bytes() for name in ("reconciliation.csv", "rma.csv")}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        held = con.execute("SELECT sum(devices) FROM snapshots WHERE month = ?",
                           [MONTH]).fetchone()[0]
    if not held == floor_devices == pandas_devices:
        raise SystemExit(f"devices differ: pipeline {held}, DuckDB floor {floor_devices}, "
                         f"pandas {pandas_devices}")
    run_process("-m", "pipelines", "reconcile", "--home", str(home), "--month", MONTH)
    if any((folder / name).read_bytes() != data for name, data in first.items()):
        raise SystemExit("reconciling again changed reconciliation.csv or rma.csv")
    return held


def help_seconds() -> float:
    return statistics.median(run_process("-m", "pipelines", "--help").seconds for _ in range(5))


def machine() -> str:
    memory = next((int(line.split()[1]) // 1024 for line in
                   Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import duckdb
    import pandas

    return (f"{os.cpu_count()} cores ({cpu}), {memory / 1024:.1f} GiB memory, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, pandas {pandas.__version__}")


def dag_section(runs: list[dict]) -> list[str]:
    """The monthly DAG at each customer count: wall time, per task, Airflow's share."""
    if not runs:
        return []
    names = list(dict.fromkeys(name for run in runs for name in run["tasks"]))
    lines = ["", "## The monthly DAG (`airflow dags test`)", "",
             (f"{DAG_DEVICES} devices per customer, the month taken in before (run.py measures "
              "intake). `airflow dags test` runs the tasks one after another in one process: "
              "these are the work, not a scheduler's parallel renders. Per task name: tasks "
              "run, seconds in them (stages from the pipeline's timers)."), "",
             "| customers | wall | in tasks | Airflow's share | months computed | "
             + " | ".join(f"`{name}`" for name in names) + " |",
             "|---:|---:|---:|---:|---:|" + "---:|" * len(names)]
    for run in runs:
        cells = []
        for name in names:
            task = run["tasks"].get(name)
            cells.append(f"{task['tasks']} × {task['seconds']:.1f} s" if task else "")
        lines.append(f"| {run['customers']:,} | {run['wall']:.1f} s | {run['in_tasks']:.1f} s |"
                     f" {run['airflow']:.1f} s | {run['months_computed']} | "
                     + " | ".join(cells) + " |")
    by_customers = {run["customers"]: run for run in runs}
    if {100, 1_000} <= by_customers.keys() \
            and by_customers[1_000]["wall"] > 11 * by_customers[100]["wall"]:
        lines += ["", DAG_BOUND]
    return lines


def report(results: list[SizeResult], help_time: float, dag_runs: list[dict],
           gx_seconds: float) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (benchmarks/run.py) on {time.strftime('%Y-%m-%d')}.",
        f"Machine: {machine()}.",
        "",
        ("Each size is one month of Lens exports from the demo generator, 5,000 devices per "
        "customer. Times are whole processes (Python start and imports included); the stage "
        "split comes from the pipeline's own timers. Pipeline = `ingest` + `reconcile`."),
        "",
        ("| rows | files | DuckDB floor | pandas | ingest (intake / validation / load) | "
        "reconcile | pipeline | x floor | x pandas | peak RSS | render median |"),
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.ingest.stages
        lines.append(
            f"| {r.rows:,} | {r.files:,} | {r.floor.seconds:.2f} s | {r.pandas.seconds:.2f} s | "
            f"{r.ingest.seconds:.2f} s ({s.get('intake', 0):.2f} / {s.get('validation', 0):.2f}"
            f" / {s.get('load', 0):.2f}) | {r.reconcile.seconds:.2f} s | "
            f"{r.pipeline_seconds:.2f} s | {r.pipeline_seconds / r.floor.seconds:.1f} | "
            f"{r.pipeline_seconds / r.pandas.seconds:.2f} | {r.peak_mb:,.0f} MB | "
            f"{r.render_median:.2f} s |")
    lines += ["", f"`python -m pipelines --help`: {help_time:.2f} s (median of 5).", "",
              ("Every size was checked: the devices the pipeline counted equal the floor's and "
              "the pandas script's count, and a second `reconcile` wrote byte-identical files."),
              "", "## Targets", "", TARGETS, "", "## Outcome", ""]
    lines += [f"- {verdict}" for verdict in verdicts(results, help_time, dag_runs)]
    if any(r.render_median >= 0.5 for r in results):
        lines += ["", RENDER_BOUND]
    lines += dag_section(dag_runs)
    lines += profile_section(results[-1], gx_seconds)
    return "\n".join(lines) + "\n"


def profile_section(largest: SizeResult, gx_seconds: float) -> list[str]:
    """Where `ingest` spends its time at the largest size: per stage, and per SQL file."""
    if not largest.profile:
        return []
    profile = largest.profile
    statements = profile["statements"]
    in_sql = sum(statements.values())
    lines = ["", f"## Where the time goes: `ingest` of {largest.rows:,} rows", "",
             f"One more `ingest` of the same files, in one process with the pipeline's timers "
             f"(benchmarks/profile_ingest.py): {profile['seconds']:.1f} s. Per stage: "
             + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds
                         in profile["stages"].items()) + ".", "",
             "| SQL file (DuckDB) | seconds | share |", "|---|---:|---:|"]
    for name, seconds in list(statements.items())[:10]:
        lines.append(f"| `sql/{name}` | {seconds:.2f} | {seconds / profile['seconds']:.0%} |")
    rest = profile["seconds"] - in_sql
    lines += [(f"| everything else: Python start-up, imports (GX {gx_seconds:.1f} s of it), "
              f"reading headers, hashing, GX validation, moving files | {rest:.2f} | "
              f"{rest / profile['seconds']:.0%} |"), "", BOUNDS.format(
                  floor=largest.floor.seconds, gx=gx_seconds,
                  read=statements.get("intake/read_export_cells.sql", 0),
                  stage=statements.get("intake/stage_export_cells.sql", 0),
                  keys=statements.get("raw/key_staged_rows.sql", 0),
                  publish=statements.get("raw/publish_staged_snapshots.sql", 0),
                  verdict=_gap(largest))]
    return lines


def _gap(largest: SizeResult) -> str:
    """How far the largest size is from its targets, in seconds."""
    target = min(2.5 * largest.floor.seconds, largest.pandas.seconds)
    if largest.pipeline_seconds <= target:
        return "Both targets are met."
    return (f"Meeting both targets at {largest.rows:,} rows means {target:.1f} s: "
            f"{largest.pipeline_seconds - target:.1f} s less than the pipeline's "
            f"{largest.pipeline_seconds:.1f} s.")


def verdicts(results: list[SizeResult], help_time: float, dag_runs: list[dict]) -> list[str]:
    largest = results[-1]
    by_rows = {r.rows: r for r in results}
    out = [
        _verdict(largest.pipeline_seconds <= 2.5 * largest.floor.seconds,
                 f"{largest.rows:,} rows: pipeline {largest.pipeline_seconds:.1f} s = "
                 f"{largest.pipeline_seconds / largest.floor.seconds:.1f}x the DuckDB floor "
                 f"(target 2.5x)"),
        _verdict(largest.pipeline_seconds < largest.pandas.seconds,
                 f"{largest.rows:,} rows: {largest.pipeline_seconds / largest.pandas.seconds:.2f}"
                 f"x the plain pandas script (target: under 1x)"),
        _verdict(largest.peak_mb < 1536,
                 f"{largest.rows:,} rows: peak memory {largest.peak_mb:,.0f} MB (target 1.5 GB)"),
        _verdict(all(r.render_median < 0.5 for r in results),
                 "render median per customer: " + ", ".join(
                     f"{r.render_median:.2f} s" for r in results) + " (target 0.5 s)"),
        _verdict(help_time < 1, f"--help {help_time:.2f} s (target 1 s)"),
    ]
    if 1_000_000 in by_rows:
        million = by_rows[1_000_000]
        out.insert(2, _verdict(million.pipeline_seconds <= 3 * million.floor.seconds,
                               f"1,000,000 rows: pipeline {million.pipeline_seconds:.1f} s = "
                               f"{million.pipeline_seconds / million.floor.seconds:.1f}x the "
                               f"DuckDB floor (target 3x)"))
    if 1_000_000 in by_rows and 5_000_000 in by_rows:
        ratio = by_rows[5_000_000].pipeline_seconds / by_rows[1_000_000].pipeline_seconds
        out.insert(3, _verdict(ratio <= 5.5, f"5M rows take {ratio:.2f}x the time of 1M "
                                             f"(target 5.5x)"))
    by_customers = {run["customers"]: run for run in dag_runs}
    if {100, 1_000} <= by_customers.keys():
        ratio = by_customers[1_000]["wall"] / by_customers[100]["wall"]
        out.append(_verdict(ratio <= 11, f"the monthly DAG: 1,000 customers take {ratio:.2f}x "
                                         f"the time of 100 (target 11x)"))
    if dag_runs:
        computed = [run["months_computed"] for run in dag_runs]
        out.append(_verdict(set(computed) == {1}, "the monthly DAG computed its month "
                            + ", ".join(f"{c}x" for c in computed) + " per run (target once)"))
    return out


def _verdict(met: bool, text: str) -> str:
    return f"{'met' if met else 'NOT MET'}: {text}"


# The last section of results.md, measured by benchmarks/s3_intake.py and written by hand: kept.
S3_SECTION = "\n## S3 drop folder intake"


def _kept(output: Path) -> str:
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    return text[text.index(S3_SECTION):] if S3_SECTION in text else ""


def main() -> None:
    if sys.argv[1:2] == ["render-sample"]:
        render_sample(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="device rows per size, comma separated (default: %(default)s)")
    parser.add_argument("--dag-customers", default=",".join(map(str, DAG_CUSTOMERS)),
                        help="customer counts of the DAG benchmark, comma separated, or '' "
                             "for none (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="polyrecon-bench-") as scratch:
        results = [measure(rows, Path(scratch), rows == sizes[-1]) for rows in sizes]
        dag_runs = [measure_dag(int(customers), Path(scratch))
                    for customers in filter(None, args.dag_customers.split(","))]
    text = report(results, help_seconds(), dag_runs, gx_import_seconds()) + _kept(args.output)
    args.output.write_text(text, encoding="utf-8")
    print("\n" + text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
