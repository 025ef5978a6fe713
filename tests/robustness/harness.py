"""The robustness suite's tools: real CLI subprocesses on real workspaces, and a fingerprint
of everything a run leaves that must not depend on crashes, concurrency or faults."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from email import message_from_bytes, policy
from pathlib import Path
from typing import NamedTuple
from unittest.mock import patch

from builders import build_once

from pipelines.cli import main
from pipelines.core.workspace import Workspace
from pipelines.warehouse.connection import open_warehouse

ROOT = Path(__file__).resolve().parents[2]
MONTH = "2026-10"


# --- workspaces and runs --------------------------------------------------------------------

# Four of the demo's seven customers: a quarantined upload, a true-up, an RMA breach and a
# renewal among them.
KEPT_CUSTOMERS = ("cobalt-ridge-engineering", "hanseatische-logistik", "lakeshore-health",
                  "rheintal-praezision")


def small_demo(root: Path, months_from: str = MONTH) -> Path:
    """The demo workspace with four customers and only their last month's inventories (their
    RMA logs and the one broken file kept): the same shapes of data, a run of a few seconds."""
    import yaml

    from pipelines.demo.build import build_demo_workspace

    build_demo_workspace(root, MONTH)
    contracts = root / "config" / "contracts.yaml"
    data = yaml.safe_load(contracts.read_text(encoding="utf-8"))
    data["customers"] = [c for c in data["customers"] if c["id"] in KEPT_CUSTOMERS]
    contracts.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                         encoding="utf-8")
    for folder in (root / "inbox").iterdir():
        if folder.name not in KEPT_CUSTOMERS:
            shutil.rmtree(folder)
    for path in (root / "inbox").rglob("*"):
        found = re.search(r"\d{4}-\d{2}", path.name)
        if path.is_file() and found and found[0] < months_from \
                and not path.name.lower().startswith(("rma", "notes")):
            path.unlink()
    return root


def small_demo_template(tmp_path_factory) -> Path:
    """The small demo, built once per session (whichever process asks first): copy it."""
    return build_once(tmp_path_factory, "small-demo", small_demo)


class CleanRun(NamedTuple):
    home: Path  # never changed by a test: copy it
    fingerprint: dict
    progress: list[tuple[float, str]]  # its progress lines, seconds after the start


PROGRESS = re.compile(r"^[^:]+: \d+/\d+$")  # "Rendering reports for 2026-10: 2/4"


def clean_run_once(tmp_path_factory, template: Path) -> CleanRun:
    """An undisturbed `run` of the month on a copy of the small demo, once per session: what
    every disturbed run must end as, and the progress lines it printed (when, after its
    start)."""
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        home = copy_workspace(template, folder / "ws")
        process = Watched(home, "run", "--month", MONTH)
        try:
            lines = list(process.lines(timeout=600))
        finally:
            process.close()
        assert process.process.returncode == 0, "\n".join(line for _, line in lines)[-3000:]
        progress = [(seconds, line) for seconds, line in lines if PROGRESS.match(line)]
        (folder / "run.pickle").write_bytes(pickle.dumps((fingerprint(home), progress)))
    folder = build_once(tmp_path_factory, "clean-run", build)
    found, progress = pickle.loads((folder / "run.pickle").read_bytes())
    return CleanRun(folder / "ws", found, progress)


def copy_workspace(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)  # copy2 keeps modification times
    return target


def polyrecon(home: Path, *args: str, env: dict | None = None, timeout: float = 300,
              **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **popen, check=False)


def polyrecon_here(home: Path, *args: str, env: dict | None = None
                   ) -> subprocess.CompletedProcess:
    """`polyrecon(home, *args)` in this process, for a command whose process is not what the
    test is about (a run that finishes the work, `status`): GX, WeasyPrint and matplotlib are
    imported once per test process, not once per command (seconds of CPU each). `env` is set
    while it runs; what it printed is captured as the subprocess's would be; an exception it
    does not catch fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with patch.dict(os.environ, env or {}), redirect_stdout(out), redirect_stderr(err):
        code = main([*args, "--home", str(home)])
    return subprocess.CompletedProcess(["polyrecon", *args], code, out.getvalue(),
                                       err.getvalue())


def start(home: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines", *args, "--home", str(home)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})}, **popen)


class Watched:
    """A CLI subprocess whose output lines (stdout and stderr alike) are read as they come, by
    a thread per stream: no line waits in a buffer for the next one."""

    def __init__(self, home: Path, *args: str, env: dict | None = None):
        self.process = start(home, *args, env=env)
        self.started = time.monotonic()
        self._lines: queue.Queue = queue.Queue()
        self._open = 2
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._lines.put((time.monotonic() - self.started, line.rstrip("\n")))
        self._lines.put(None)

    def next_line(self, until: float) -> tuple[float, str] | None:
        """The next line (seconds after the start, its text); None once both streams have
        ended, or when `until` (seconds after the start) comes first."""
        while self._open:
            wait = until - (time.monotonic() - self.started)
            if wait <= 0:
                return None
            try:
                item = self._lines.get(timeout=wait)
            except queue.Empty:
                return None
            if item is None:
                self._open -= 1
            else:
                return item
        return None

    @property
    def ended(self) -> bool:
        """Both streams ended: the process closed them (it ended, or is about to)."""
        return not self._open

    def lines(self, timeout: float = 300) -> Iterator[tuple[float, str]]:
        """Every line as it comes, to the end of both streams; AssertionError if they are
        still open `timeout` seconds after the start."""
        while (item := self.next_line(timeout)) is not None:
            yield item
        assert self.ended, f"still running after {timeout:g} s"

    def kill(self) -> bool:
        """SIGKILL; True if that is what ended it (it had not finished already)."""
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait() == -9

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        while self.next_line(time.monotonic() - self.started + 60) is not None:
            pass  # the streams to their end: the pumps finish
        self.process.stdout.close()
        self.process.stderr.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not any(
        part.startswith(".") for part in p.relative_to(folder).parts) and
        (p.is_file() or p.is_symlink()))


def fingerprint(home: Path) -> dict:
    """Everything a run leaves that must not depend on crashes: result files byte for byte,
    where every input went (byte for byte), each e-mail once, the warehouse's ledgers."""
    print_ = {}
    for path in _visible_files(home / "reports"):
        name = path.relative_to(home).as_posix()
        if path.suffix in (".csv", ".yaml"):
            print_[name] = _sha(path)
        else:  # HTML and PDF carry their render time: they must exist
            print_[name] = "rendered" if path.stat().st_size > 0 else "empty"
    for folder in ("archive", "quarantine"):
        for path in _visible_files(home / folder):
            name = path.relative_to(home).as_posix()
            if name.endswith(".reason.txt"):  # holds the time of receipt (any language)
                print_[name] = re.sub(r"(?m)^.* \d\d:\d\d:\d\d UTC$", "", path.read_text())
            else:
                print_[name] = _sha(path)
    print_["inbox left"] = sorted(p.relative_to(home).as_posix()
                                  for p in (home / "inbox").rglob("*") if p.is_file())
    messages = Counter()
    for path in (home / "outbox").rglob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        attachments = tuple(sorted(a.get_filename() for a in message.iter_attachments()))
        messages[(path.parent.name, message["Subject"], message["To"], message["Cc"] or "",
                  attachments)] += 1
    print_["outbox"] = sorted(messages.items())
    with open_warehouse(Workspace.resolve(home), read_only=True) as con:  # either warehouse
        print_["intake"] = sorted(con.execute(
            "SELECT customer_id, file_name, sha256, outcome, stored_path FROM intake_log"
        ).fetchall(), key=repr)
        print_["snapshots"] = sorted(con.execute(
            "SELECT customer_id, month, sha256, row_count FROM snapshots").fetchall(), key=repr)
        print_["mail"] = sorted(con.execute(
            "SELECT kind, customer_id, month, subject, status FROM mail_ledger").fetchall(),
            key=repr)
    status = polyrecon_here(home, "status")
    print_["status"] = status.stdout.replace(str(home), "<home>")
    return print_


def assert_same(found: dict, clean: dict) -> None:
    assert found.keys() == clean.keys(), sorted(set(found) ^ set(clean))
    different = [key for key in clean if found[key] != clean[key]]
    assert not different, {key: (found[key], clean[key]) for key in different[:3]}


