"""Fixtures of the scale-out tests: one PostgreSQL and one S3 server per session, a fresh
catalog database and bucket per test."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "robustness"))  # harness: the small demo workspace

# Importable once their folders are on the path (above).
from harness import clean_run_once, small_demo_template  # noqa: E402
from servers import start_postgres, start_s3  # noqa: E402


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """The robustness suite's small demo: four customers, a quarantined upload, RMA logs
    (made once per session)."""
    return small_demo_template(tmp_path_factory)


@pytest.fixture(scope="session")
def embedded_run(template, tmp_path_factory):
    """The undisturbed monthly job on the embedded warehouse and the local inbox (the
    robustness suite's clean run, made once per session): the home and its fingerprint, what
    every scale-out variant must equal."""
    home, found, _ = clean_run_once(tmp_path_factory, template)
    return home, found


@pytest.fixture(scope="session")
def postgres():
    # Not under pytest's own folder: that is root's alone, and the server runs as another user.
    folder = Path(tempfile.mkdtemp(prefix="polyrecon-pg-"))
    try:
        yield from start_postgres(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3():
    yield from start_s3()


@pytest.fixture
def lake(postgres, s3, request, monkeypatch):
    """A fresh DuckLake: (catalog connection string, data path on the S3 server); the AWS
    variables set for this process and the CLI subprocesses it starts."""
    name = "lake_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40].lower()
    catalog = postgres.create_database(name)
    bucket = s3.create_bucket(name.replace("_", "-"))
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return catalog, f"s3://{bucket}/lake/"
