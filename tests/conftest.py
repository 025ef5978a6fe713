import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import run_airflow

ROOT = Path(__file__).resolve().parent.parent

# CI explores the same examples on every run (a green main stays green); a developer's runs
# explore new ones, and FUZZ_EXAMPLES widens the reader's fuzzing.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    # docs/reliability.md is written by the process that sees every test's report: the only
    # one without xdist, the controller with it (tests/robustness/reliability_doc.py).
    from robustness.reliability_doc import ReliabilityDoc

    config.pluginmanager.register(ReliabilityDoc(config), "reliability-doc")


def pytest_collection_modifyitems(config, items):
    """Tests marked `serial` must not run beside others: an xdist run leaves them out and
    `make test` runs them on their own afterwards (`-p no:xdist -m serial`)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker collects the same tests
        kept = [item for item in items if item.get_closest_marker("serial") is None]
        if len(kept) != len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in kept])
            items[:] = kept


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """A real Airflow metadata DB (one per test module) with the DAGs folder and the pool."""
    home = tmp_path_factory.mktemp("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "PYTHONPATH": str(ROOT),
           "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}})}
    for command in (["db", "migrate"],
                    ["pools", "set", "polyrecon_duckdb", "1", "polyrecon DuckDB writer"]):
        done = run_airflow(env, *command)
        assert done.returncode == 0, done.stderr[-2000:]
    return env
