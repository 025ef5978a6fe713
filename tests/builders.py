"""Building real workspaces for tests: config files, Lens exports in the inbox, CLI runs."""
from __future__ import annotations

import csv
import fcntl
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import duckdb
import yaml

from pipelines.cli import main
from pipelines.core.workspace import Workspace

# The month the session's full demo ends with (conftest.full_demo); here, not in conftest.py, so
# that test modules can import it: `conftest` may name tests/scaleout's conftest instead.
DEMO_MONTH = "2026-10"

SNAKE = ("serial_number", "mac_address", "device_model", "site_name", "room_name",
         "lens_device_id")


def contract(customer_id="acme", categories=None, term=("2026-01-01", "2026-12-31"),
             currency="EUR", **extra) -> dict:
    entry = {
        "id": customer_id, "name": f"{customer_id.title()} GmbH",
        "master_account_id": "MA-100234", "site_ids": ["S-1001"],
        "csm": {"name": "Jana Beispiel", "email": "jana@example.com"},
        "partner_contacts": ["service@partner.example"], "currency": currency,
        "term": {"start": term[0], "end": term[1]},
        "categories": categories or {"video": {"ordered_devices": 100,
                                               "unit_price_per_year": 180.0}},
    }
    entry.update(extra)
    return entry


def make_workspace(root: Path, customers: list[dict], policy: dict | None = None) -> Workspace:
    workspace = Workspace.resolve(root)
    for folder in workspace.folders():
        folder.mkdir(parents=True, exist_ok=True)
    write_yaml(workspace.contracts_file, {"customers": customers})
    write_yaml(workspace.partner_file, {"policy": policy} if policy else {})
    return workspace


def write_yaml(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def set_review(workspace: Workspace, review: str) -> None:
    """partner.yaml `delivery: {review: …}`: `off` for tests of delivery itself on the demo,
    whose partner.yaml requires review."""
    partner = yaml.safe_load(workspace.partner_file.read_text(encoding="utf-8")) or {}
    write_yaml(workspace.partner_file, {**partner, "delivery": {"review": review}})


def devices(model: str, count: int, prefix: str = "SN", start: int = 0) -> list[dict]:
    return [{"serial_number": f"{prefix}{start + i:06d}", "device_model": model,
             "site_name": "Berlin"} for i in range(count)]


def export_text(rows: list[dict], columns=SNAKE, separator=",") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return buffer.getvalue()


def drop(workspace: Workspace, customer_id: str, name: str, text: str | bytes,
         mtime: float | None = None, encoding: str = "utf-8") -> Path:
    """Put a file into the customer's inbox, as a partner would: finished writing a minute
    ago (unless `mtime` says when), so intake need not wait for it to settle."""
    folder = workspace.inbox / customer_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    mtime = time.time() - 60 if mtime is None else mtime
    os.utime(path, (mtime, mtime))
    return path


def warehouse_rows(workspace: Workspace, sql: str, params: list) -> list[tuple]:
    """`sql`'s rows from the workspace's warehouse, opened read-only and closed again."""
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def end_process_group(process: subprocess.Popen) -> None:
    """A server a test started in a session of its own, ended with everything it started:
    SIGTERM, then SIGKILL after 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cli(workspace: Workspace, *args: str) -> int:
    return main([*args, "--home", str(workspace.home)])


def reconciliation(workspace: Workspace, month: str) -> list[dict]:
    path = workspace.home / "reports" / month / "reconciliation.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def row_for(rows: list[dict], customer_id: str, category: str) -> dict:
    return next(r for r in rows if r["customer_id"] == customer_id and r["category"] == category)


AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def run_airflow(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `airflow` command of this environment, as a data engineer runs it."""
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# --- heavy fixtures built once per session ------------------------------------------------------

def session_folder(tmp_path_factory) -> Path:
    """A folder every process of this pytest session shares: the session's base temporary
    folder, which under pytest-xdist is the parent of each worker's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name` made by `build(folder)` once per session: the first process to ask
    builds it while the others wait (a file lock), then all of them get the same folder. Tests
    copy it (`copy_tree`) and never change it. A build that failed fails every later asker with
    its traceback, without building again."""
    root = session_folder(tmp_path_factory) / "built-once"
    root.mkdir(exist_ok=True)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with (root / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            raise RuntimeError(f"building {name} failed in another worker:\n"
                               f"{failed.read_text(encoding='utf-8')}")
        if not done.exists():
            try:
                build(folder)
            except BaseException:
                failed.write_text(traceback.format_exc(), encoding="utf-8")
                raise
            done.touch()
    return folder


def copy_tree(source: Path, target: Path) -> Path:
    """A copy of a built folder: links as links, modification times and modes kept."""
    shutil.copytree(source, target, symlinks=True)
    return target
