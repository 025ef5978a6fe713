"""The monthly DAG under a real Airflow — scheduler, API server and DAG processor (`airflow
standalone`), LocalExecutor running four task instances at once — on DuckLake: the customers'
reports render side by side, and the results equal the command line's."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from itertools import pairwise
from pathlib import Path

import pytest
from builders import end_process_group
from harness import MONTH, copy_workspace
from servers import free_port, on_ducklake

VENV_BIN = Path(sys.executable).parent
DAG = "polylens_monthly_reconciliation"


def airflow(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "airflow"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def scheduler(tmp_path, lake, template, airflow_template):
    """A workspace on DuckLake and a running Airflow whose DAGs folder is ours, on a copy of
    the session's migrated metadata DB (standalone then finds nothing to migrate)."""
    home = on_ducklake(copy_workspace(template, tmp_path / "ws"), *lake)
    (tmp_path / "airflow").mkdir()
    shutil.copy2(airflow_template / "airflow.db", tmp_path / "airflow" / "airflow.db")
    port = free_port()
    env = {**os.environ,
           # standalone starts its components as `airflow …` from PATH
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONPATH": str(Path.cwd()),
           "POLYRECON_HOME": str(home), "POLYRECON_TIMINGS": str(tmp_path / "timings.jsonl"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[2] / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__PARALLELISM": "4",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run the test triggers
           "AIRFLOW__API__PORT": str(port),
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
    log = (tmp_path / "standalone.log").open("w")
    process = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not _metadata(env, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG):
            assert process.poll() is None, (tmp_path / "standalone.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Airflow never listed the DAG"
            time.sleep(1)
        assert DAG in airflow(env, "dags", "list").stdout
        yield env, home
    finally:
        end_process_group(process)
        log.close()


def test_the_monthly_dag_renders_customers_in_parallel_on_ducklake_as_the_cli_would(
        scheduler, embedded_run, tmp_path):
    env, home = scheduler
    # On DuckLake writers on different customers commit side by side: the pool may have slots.
    for command in (["pools", "set", "polyrecon_duckdb", "4", "polyrecon writers"],
                    ["dags", "unpause", DAG]):
        done = airflow(env, *command)
        assert done.returncode == 0, done.stderr[-2000:]
    run_id = "parallel-" + MONTH
    done = airflow(env, "dags", "trigger", DAG, "--run-id", run_id, "--conf",
                   json.dumps({"month": MONTH}))
    assert done.returncode == 0, done.stderr[-2000:]
    state, deadline = None, time.monotonic() + 420
    while state not in ("success", "failed"):
        assert time.monotonic() < deadline, f"the run is still {state}"
        time.sleep(1)
        [(state,)] = _metadata(env, "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?",
                               DAG, run_id) or [(None,)]
    state = next((r["state"] for r in _runs(env) if r["run_id"] == run_id), None)
    assert state == "success", _failed_logs(tmp_path)

    renders = [json.loads(line) for line in (tmp_path / "timings.jsonl").read_text().splitlines()
               if json.loads(line)["task"] == "render"]
    assert len(renders) == 4  # one per customer
    # Side by side: a render started before another one had ended.
    spans = sorted((r["started"], r["started"] + r["seconds"]) for r in renders)
    assert any(later[0] < earlier[1] for earlier, later in pairwise(spans)), spans

    cli_home = embedded_run[0]
    ours, theirs = (side / "reports" / MONTH for side in (home, cli_home))
    for name in ("reconciliation.csv", "rma.csv"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes()
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    mails = sorted(p.name for p in (home / "outbox").rglob("*.eml"))
    assert mails == sorted(p.name for p in (cli_home / "outbox").rglob("*.eml"))
    assert mails


def _metadata(env: dict, sql: str, *params) -> list[tuple]:
    """Rows of Airflow's metadata DB (SQLite in AIRFLOW_HOME), read-only: what the test waits
    for is polled there, at no cost, rather than by `airflow` commands (seconds of CPU each,
    taken from the scheduler and the tasks), which then confirm it once."""
    path = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    if not path.exists():
        return []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as con:
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:  # its tables not made yet
            if "no such table" in str(error):
                return []
            raise


def _runs(env: dict) -> list[dict]:
    """The DAG's runs, from the JSON line among the command's warnings."""
    lines = airflow(env, "dags", "list-runs", DAG, "-o", "json").stdout.splitlines()
    return next((json.loads(line) for line in lines if line.startswith(("[{", "[]"))), [])


def _failed_logs(tmp_path: Path) -> str:
    logs = sorted((tmp_path / "airflow" / "logs").rglob("*.log"))
    return "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs[-4:])
