import io
import json
import os
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import DEMO_MONTH, build_once, copy_tree, run_airflow
from fake_smtp import Server

from pipelines.cli import main

ROOT = Path(__file__).resolve().parent.parent

# CI explores the same examples on every run (a green main stays green); a developer's runs
# explore new ones, and FUZZ_EXAMPLES widens the reader's fuzzing.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    # docs/reliability.md is written by the process that sees every test's report: the only
    # one without xdist, the controller with it (tests/reliability_doc.py).
    from reliability_doc import ReliabilityDoc

    config.pluginmanager.register(ReliabilityDoc(config), "reliability-doc")


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (tests/fake_smtp.py), the test's own."""
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def reliability(request):
    """`reliability(fault, where, what_happened)`: a row of docs/reliability.md, claimed only if
    this test passes. Claim one only where the test asserts what the table says of every row:
    nothing lost, and the same result as an undisturbed run."""
    from reliability_doc import CLAIM

    def claim(fault: str, where: str, happened: str) -> None:
        request.node.user_properties.append((CLAIM, (fault, where, happened)))
    return claim


def _airflow_env(home: Path) -> dict:
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "PYTHONPATH": str(ROOT),
            "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs", "extra": {"path": "/"}})}


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory) -> Path:
    """A migrated Airflow metadata DB with the pool, made once per session."""
    def build(home: Path) -> None:
        home.mkdir(parents=True)
        for command in (["db", "migrate"],
                        ["pools", "set", "polyrecon_duckdb", "1", "polyrecon DuckDB writer"]):
            done = run_airflow(_airflow_env(home), *command)
            assert done.returncode == 0, done.stderr[-2000:]
    return build_once(tmp_path_factory, "airflow", build)


@pytest.fixture
def airflow_env(airflow_template, tmp_path_factory):
    """A real Airflow metadata DB of the test's own (a copy of the migrated one) with the DAGs
    folder and the pool; Airflow writes a fresh airflow.cfg for this home on first use."""
    home = tmp_path_factory.mktemp("airflow")
    shutil.copy2(airflow_template / "airflow.db", home / "airflow.db")
    return _airflow_env(home)


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory) -> tuple[Path, str]:
    """`python -m pipelines demo` (the whole demo year, run month by month), made once per
    session: its workspace, never changed by a test (copy it: `demo_copy`), and what it
    printed."""
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        # In this process: its heavy imports serve the tests after it (test_demo.py runs the
        # demo again as a process of its own, so repeatable still means across processes).
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["demo", "--home", str(folder / "ws"), "--month", DEMO_MONTH])
        assert code == 0, err.getvalue()
        (folder / "stdout.txt").write_text(out.getvalue(), encoding="utf-8")
    folder = build_once(tmp_path_factory, "full-demo", build)
    return folder / "ws", (folder / "stdout.txt").read_text(encoding="utf-8")


@pytest.fixture
def demo_copy(full_demo, tmp_path) -> Path:
    """A copy of the full demo's workspace, the test's own."""
    return copy_tree(full_demo[0], tmp_path / "demo")
