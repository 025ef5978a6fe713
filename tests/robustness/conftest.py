"""The robustness suite's fixtures: a small demo workspace and its undisturbed run (each made
once per session, shared with tests/scaleout). Its tests claim rows of docs/reliability.md with
the `reliability` fixture (tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from harness import CleanRun, clean_run_once, small_demo_template


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    return small_demo_template(tmp_path_factory)


@pytest.fixture(scope="session")
def clean_run(demo_template, tmp_path_factory) -> CleanRun:
    """An undisturbed `run` on a copy of the template: its home (copy it to change it), what
    every disturbed run must end as, and the progress lines it printed."""
    return clean_run_once(tmp_path_factory, demo_template)
