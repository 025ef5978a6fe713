"""`rebuild`: a fresh warehouse from the files kept in archive/, for a damaged warehouse file.

Everything the results depend on is in archive/: every upload that was loaded (in
archive/<customer>/<YYYY-MM>/ and archive/<customer>/rma/; archive/<customer>/duplicates/
changed nothing and is skipped) and every complete Lens API pull (`lens-api-…-<receipt>.csv`, its
tenant's region in the name where Lens named one).
They are taken again in the order they were received: by the old warehouse's receipt numbers
when it can still be read, else by the time each was received (an upload's modification time,
which the renames into archive/ kept; a pull's start time, in its name).

The new warehouse is built aside in `<home>/.rebuild/` (uploads are hard links there, taken
through the same intake as the inbox; the files in archive/ are never moved) and replaces the
old one in one rename; the old file is kept as `warehouse.duckdb.before-rebuild-<time>`. The months
that have a reconciliation.csv are reconciled again.

The mail ledger must survive, or the next run would send every message again. Delivery owns
it (delivery/mail.py): it is copied from the old warehouse when that can be read; else a month's
messages are marked as sent when their `.eml` file is in outbox/; with SMTP configured (no
outbox to show what went out), every message of the rebuilt months is marked as sent, and the
command says so. The SQL is in sql/jobs/rebuild_*.sql, but for the ATTACH of the old warehouse
(`_old_attached`).
"""
from __future__ import annotations

import csv
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.core.config import Config
from pipelines.core.errors import ConfigError
from pipelines.core.i18n import english
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.delivery.mail import copy_ledger, ledger_from_outbox
from pipelines.intake.inbox import CLAIMED
from pipelines.intake.take import take_inbox
from pipelines.lens_api.pull import load_pull_file
from pipelines.reconciliation.month import reconcile_month
from pipelines.reconciliation.result_files import write_month_results
from pipelines.warehouse.connection import (
    next_receipt,
    open_warehouse,
    run_sql,
    transaction,
)
from pipelines.warehouse.run_lock import workspace_lock

log = logging.getLogger("polyrecon")
STAGING = ".rebuild"
# lens_api/pull.py's pull_file_name: the start, the receipt and, where Lens named it, the region.
PULL_FILE = re.compile(r"lens-api-.+-(\d{8}T\d{6}Z)-(\d+)(?:-region-([A-Za-z0-9_-]+))?\.csv")
MONTH_FOLDER = re.compile(r"\d{4}-\d{2}")


@dataclass(frozen=True)
class _Archived:
    path: Path
    customer_id: str
    order: tuple  # (0, old receipt) when the old warehouse knows it, else (1, time, name)
    pull_started: datetime | None = None
    pull_receipt: int | None = None
    pull_region: str | None = None

    @property
    def month(self) -> Month | None:
        folder = self.path.parent.name
        return Month.parse(folder) if MONTH_FOLDER.fullmatch(folder) else None


@dataclass
class RebuildOutcome:
    files: int = 0
    pulls: int = 0
    months: list[str] = field(default_factory=list)
    kept_as: Path | None = None
    mail: str = ""
    written: list[Path] = field(default_factory=list)


def rebuild(config: Config, wait: float = 0) -> RebuildOutcome:
    workspace = config.workspace
    if config.partner.warehouse.ducklake is not None:
        raise ConfigError("rebuild makes a new warehouse.duckdb and partner.yaml names a "
                          "DuckLake warehouse: restore its PostgreSQL catalog from backup, or "
                          "remove warehouse.ducklake to rebuild an embedded warehouse from "
                          "archive/")
    with workspace_lock(workspace, "rebuild", wait):
        staging = Workspace(workspace.home / STAGING)
        if staging.home.exists():  # left by a rebuild that stopped: only links and scratch
            shutil.rmtree(staging.home)
        staging.home.mkdir()
        old = _read_old(workspace.warehouse)
        outcome = RebuildOutcome()
        stage_config = Config(staging, config.partner, config.contracts, config.catalog)
        for item in sorted(_archived(workspace, old), key=lambda a: a.order):
            if item.pull_receipt is None:
                _take_upload(stage_config, item)
                outcome.files += 1
            elif old is None or item.pull_receipt in old.pull_receipts:
                _take_pull(stage_config, item)
                outcome.pulls += 1
        outcome.months = _reconciled_months(workspace)
        results = [reconcile_month(stage_config, Month.parse(m))
                   for m in outcome.months]
        with open_warehouse(staging) as con:
            if old is None:
                outcome.mail = _mail_from_outbox(con, config, results)
            else:
                with _old_attached(con, workspace.warehouse):
                    outcome.mail = english(
                        "mail ledger copied from the old warehouse (%(num)s message)",
                        "mail ledger copied from the old warehouse (%(num)s messages)",
                        copy_ledger(con))
                    # The quarantined files' records, so `status` still lists them.
                    with transaction(con):
                        run_sql(con, "jobs/rebuild_copy_quarantine_log.sql")
        outcome.kept_as = _swap(workspace, staging)
        for result in results:
            outcome.written += write_month_results(workspace, result)
        shutil.rmtree(staging.home)
        return outcome


@dataclass(frozen=True)
class _Old:
    receipts: dict[str, int]  # stored_path -> receipt
    pull_receipts: set[int]


def _read_old(path: Path) -> _Old | None:
    """What the old warehouse still tells, or None when it cannot be read."""
    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            receipts = dict(run_sql(con, "jobs/rebuild_old_receipts.sql").fetchall())
            pulls = {r for (r,) in run_sql(con, "jobs/rebuild_old_pulls.sql").fetchall()}
            run_sql(con, "jobs/rebuild_old_mail_readable.sql").fetchall()
        finally:
            con.close()
    except duckdb.Error:
        return None
    return _Old(receipts, pulls)


def _archived(workspace: Workspace, old: _Old | None) -> list[_Archived]:
    found = []
    for customer in sorted(p for p in workspace.archive.glob("*") if p.is_dir()):
        for folder in sorted(p for p in customer.iterdir() if p.is_dir()):
            if folder.name == "duplicates":
                continue
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                found.append(_item(workspace, customer.name, path, old))
    return found


def _item(workspace: Workspace, customer_id: str, path: Path, old: _Old | None) -> _Archived:
    pull = PULL_FILE.fullmatch(path.name)
    if pull:
        started = datetime.strptime(pull[1], "%Y%m%dT%H%M%SZ")
        receipt = int(pull[2])
        order = (0, receipt) if old else (1, started.timestamp(), path.name)
        return _Archived(path, customer_id, order, started, receipt, pull[3])
    known = old.receipts.get(workspace.relative(path)) if old else None
    if known is not None:
        return _Archived(path, customer_id, (0, known))
    modified = path.lstat().st_mtime_ns / 1e9
    return _Archived(path, customer_id, (1, modified, path.name))


def _take_upload(config: Config, item: _Archived) -> None:
    """One upload through the inbox's own intake, as a hard link (same content, same time)."""
    claimed = config.workspace.inbox / CLAIMED / item.customer_id / item.path.name
    claimed.parent.mkdir(parents=True, exist_ok=True)
    os.link(item.path, claimed)
    # The month it was archived under, whatever its name reads as now; it was checked against
    # its evidence when it was first taken in (or approved).
    take_inbox(config.workspace, config.contracts, config.catalog,
               config.partner.partner.language, item.customer_id,
               months={claimed.name: item.month} if item.month else None,
               window_days=config.partner.lens.pull_window_days, check_evidence=False)


def _take_pull(config: Config, item: _Archived) -> None:
    customer = config.contracts.get(item.customer_id)
    if customer is None or item.month is None:
        log.warning("rebuild: %s has no customer or month in contracts.yaml; skipped", item.path)
        return
    with item.path.open(encoding="utf-8", newline="") as handle:
        devices = sum(1 for _ in csv.reader(handle)) - 1  # the header
    with open_warehouse(config.workspace) as con:
        # A new receipt number: the order of receipt is this rebuild's, uploads' included.
        load_pull_file(con, config.workspace, customer, item.month, item.path, item.path.name,
                       next_receipt(con), item.pull_started, devices, region=item.pull_region)


def _reconciled_months(workspace: Workspace) -> list[str]:
    return sorted(p.parent.name for p in (workspace.home / "reports").glob(
        "*/reconciliation.csv") if MONTH_FOLDER.fullmatch(p.parent.name))


def _mail_from_outbox(con, config: Config, results) -> str:
    entered = ledger_from_outbox(config, con, results)
    if config.partner.smtp is not None:
        return english("the old mail ledger was unreadable and e-mail goes through SMTP: the "
                       "%(num)s message of the rebuilt months is marked as sent, it is not "
                       "sent again (use `run --resend` for a month that must go out)",
                       "the old mail ledger was unreadable and e-mail goes through SMTP: all "
                       "%(num)s messages of the rebuilt months are marked as sent, none is "
                       "sent again (use `run --resend` for a month that must go out)", entered)
    return english("mail ledger rebuilt from outbox/: %(num)s message found sent",
                   "mail ledger rebuilt from outbox/: %(num)s messages found sent", entered)


@contextmanager
def _old_attached(con, path: Path) -> Iterator[None]:
    """The old warehouse attached as `old`, read-only: a literal, as DuckDB 1.5 takes no
    parameter in ATTACH."""
    con.execute("ATTACH '" + str(path).replace("'", "''") + "' AS old (READ_ONLY)")
    try:
        yield
    finally:
        run_sql(con, "jobs/rebuild_detach_old.sql")


def _swap(workspace: Workspace, staging: Workspace) -> Path | None:
    """The new warehouse in place in one rename; the old one kept under another name."""
    target = workspace.warehouse
    kept = None
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = target.with_name(f"{target.name}.before-rebuild-{stamp}")
        os.link(target, kept)  # the old file stays reachable whatever happens next
        wal = target.with_name(target.name + ".wal")
        if wal.exists():
            os.rename(wal, kept.with_name(kept.name + ".wal"))
    os.replace(staging.warehouse, target)
    return kept
