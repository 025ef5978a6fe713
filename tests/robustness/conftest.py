"""The robustness suite's fixtures: a small demo workspace and its undisturbed run (each made
once per session, shared with tests/scaleout), and the rows of docs/reliability.md.

A test claims its rows with the `reliability` fixture; a row counts only if the test passed.
reliability_doc.py gathers them from the tests' reports and writes the document at the end of
a session that ran the whole suite.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from harness import CleanRun, clean_run_once, small_demo_template
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
    return small_demo_template(tmp_path_factory)


@pytest.fixture(scope="session")
def clean_run(demo_template, tmp_path_factory) -> CleanRun:
    """An undisturbed `run` on a copy of the template: its home (copy it to change it), what
    every disturbed run must end as, and the progress lines it printed."""
    return clean_run_once(tmp_path_factory, demo_template)
