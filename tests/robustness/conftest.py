"""The robustness suite's fixtures (a small demo workspace and its undisturbed run) and the
rows of docs/reliability.md.

A test claims its rows with the `reliability` fixture; a row counts only if the test passed.
reliability_doc.py gathers them from the tests' reports and writes the document at the end of
a session that ran the whole suite.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness import MONTH, copy_workspace, fingerprint, polyrecon, small_demo
from reliability_doc import CLAIM


@pytest.fixture
def reliability(request):
    """`reliability(fault, where, what_happened)`: a row of docs/reliability.md, claimed
    only if this test passes (nothing lost, same result is what every test here asserts)."""
    def claim(fault: str, where: str, happened: str) -> None:
        request.node.user_properties.append((CLAIM, (fault, where, happened)))
    return claim


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    return small_demo(tmp_path_factory.mktemp("demo") / "ws")


@pytest.fixture(scope="session")
def clean_run(demo_template, tmp_path_factory) -> tuple[Path, dict, float]:
    """An undisturbed `run` on a copy of the template: what every disturbed run must end as,
    and how long it took."""
    home = copy_workspace(demo_template, tmp_path_factory.mktemp("clean") / "ws")
    started = time.monotonic()
    done = polyrecon(home, "run", "--month", MONTH)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return home, fingerprint(home), seconds
