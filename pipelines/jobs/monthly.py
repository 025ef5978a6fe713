"""The pipeline's steps as whole jobs, shared by the CLI, the demo and the Airflow DAGs.

Every job that writes to the workspace holds its lock (warehouse/run_lock.py) for its whole
duration, so
a CLI run and an Airflow task, or two of either, never work on one workspace at once; `wait`
(seconds) lets a job wait for the other instead of failing at once. On DuckLake the jobs that
take in one customer's files or pull hold the lock for that customer only, so such jobs for
different customers run side by side, and one whose commit met another's runs again.
"""
from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from pipelines.core.config import Config
from pipelines.core.errors import ConfigError, RunError
from pipelines.core.months import Month
from pipelines.core.nearest import nearest
from pipelines.delivery.mail import MailOutcome, send_month, send_notices
from pipelines.intake.take import IntakeResult, take_inbox
from pipelines.lens_api.client import CredentialLookup, LensCredentials
from pipelines.lens_api.pull import PullResult, pull_lens
from pipelines.reconciliation.catalog_review import ModelSeen, models_to_review
from pipelines.reconciliation.month import (
    compute_month,
    mark_reconciled,
    reconcile_month,
    stored_month,
)
from pipelines.reconciliation.result_files import write_month_results
from pipelines.reconciliation.results import MonthResult, ResultChange
from pipelines.reports.render import RenderOutcome, render_month, render_portfolio
from pipelines.warehouse.connection import (
    is_lake,
    open_warehouse,
    run_sql,
    warehouse_exists,
)
from pipelines.warehouse.lake import retry_conflicts
from pipelines.warehouse.published import publish, published_copy
from pipelines.warehouse.run_lock import workspace_lock

log = logging.getLogger("polyrecon")


def exclusive(command: str, per_customer: bool = False):
    """The job runs holding the workspace lock; it takes a keyword `wait` (seconds).
    `per_customer`: called with a `customer_id`, it holds the lock for that customer only, and
    is repeated when its commit met another writer's (it must be safe to repeat, as a run
    after a crash is)."""
    def wrap(job):
        signature = inspect.signature(job)

        @functools.wraps(job)
        def locked(config: Config, *args, wait: float = 0, **kwargs):
            customer_id = signature.bind(config, *args, **kwargs).arguments.get(
                "customer_id") if per_customer else None
            with workspace_lock(config.workspace, command, wait, customer_id):
                if customer_id is None or not is_lake(config.workspace):
                    return job(config, *args, **kwargs)
                return retry_conflicts(lambda: job(config, *args, **kwargs),
                                       f"`{command}` for {customer_id}")
        return locked
    return wrap


@dataclass(frozen=True)
class Intake:
    files: list[IntakeResult]
    pulls: list[PullResult]

    @property
    def failed_pulls(self) -> list[PullResult]:
        return [p for p in self.pulls if p.outcome == "failed"]


@dataclass(frozen=True)
class Refreshed:
    """What `refresh_stale_months` did: the months reconciled again, what that changed, the
    files written and the e-mail of the months that were published."""
    months: list[Month]
    changes: list[ResultChange]
    written: list[Path]
    mail: MailOutcome


@dataclass(frozen=True)
class MonthlyRun:
    intake: Intake
    result: MonthResult
    written: list[Path]
    reports: RenderOutcome | None
    mail: MailOutcome | None  # every message of every month the run touched
    changes: list[ResultChange]  # of the run's month and of every month it reconciled again
    preview: bool = False  # the month is still in progress: nothing was sent or queued


def in_progress(month: Month, today: date | None = None) -> bool:
    """interfaces.md: the current month (UTC) may be reconciled and rendered as a preview;
    nothing is sent or queued for it, and it writes no renewal proposal."""
    return month == Month.of(today or datetime.now(UTC).date())


def _sendable(month: Month) -> set[str] | None:
    """The kinds of message a month may send (None: every kind): for a month in progress only
    the notices of rejected files, which are about an upload, not about the month."""
    return {"file_rejected"} if in_progress(month) else None


def check_month_begun(month: Month, today: date | None = None) -> None:
    """interfaces.md: a month that has not begun is refused before anything is written or sent
    (a typo such as 2027-03 would otherwise send reminders and alerts)."""
    today = today or datetime.now(UTC).date()
    if month > Month.of(today):
        raise ConfigError(f"--month {month} has not begun (today is {today}, UTC): nothing was "
                          f"done; choose {Month.of(today)} or an earlier month")


def check_month_in_a_term(config: Config, month: Month) -> None:
    """A month before every customer's first term has nothing to reconcile: said in one line
    (an empty reconciliation.csv would look like a result)."""
    starts = [c.all_terms[0].term.start for c in config.contracts.customers]
    if starts and month < Month.of(min(starts)):
        raise ConfigError(f"--month {month} is before every contract term in contracts.yaml "
                          f"(the first starts {min(starts)}): nothing was done; choose "
                          f"{Month.of(min(starts))} or a later month")


def check_customer(config: Config, customer_id: str | None) -> None:
    if customer_id is not None and config.contracts.get(customer_id) is None:
        meant = nearest(customer_id, (c.id for c in config.contracts.customers))
        raise ConfigError(f"--customer: there is no customer '{customer_id}' in contracts.yaml; "
                          + (f"did you mean '{meant}'?" if meant else
                             "give the id of one of its customers"))


@exclusive("ingest", per_customer=True)
def ingest(config: Config, month: Month, customer_id: str | None = None) -> Intake:
    """The inbox first, then the Lens API pulls for `month` (the later receipt wins)."""
    check_customer(config, customer_id)
    return Intake(_take_inbox(config, customer_id), pull_lens(config, month, customer_id))


def _take_inbox(config: Config, customer_id: str | None) -> list[IntakeResult]:
    """The local inbox, and with partner.yaml `drop_folder` the uploads on object storage
    (intake/object_inbox.py: claimed, taken in here under their own names in the ledger, kept
    there, only then removed)."""
    def take(names: dict[str, str] | None = None) -> list[IntakeResult]:
        return take_inbox(config.workspace, config.contracts, config.catalog,
                          config.partner.partner.language, customer_id,
                          settle_seconds=config.partner.inbox.settle_seconds,
                          window_days=config.partner.lens.pull_window_days, names=names)

    if config.partner.drop_folder is None:
        return take()
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.intake.object_inbox import (
        DropFolder,
        fetch_uploads,
        settle_uploads,
        taken_names,
    )

    drop = DropFolder(config.partner.drop_folder)
    try:
        fetched = fetch_uploads(config.workspace, drop, customer_id)
        results = take(taken_names(fetched))
        settle_uploads(config.workspace, drop, fetched)
    except (BotoCoreError, ClientError) as error:
        raise RunError(f"the drop folder {drop.inbox.url(drop.inbox.key)} could not be read "
                       f"or written ({error}); nothing taken was lost: check drop_folder in "
                       f"partner.yaml and the AWS_* variables, then run again") from None
    return results


@exclusive("reconcile")
def reconcile(config: Config, month: Month, mark: bool = True
              ) -> tuple[MonthResult, list[Path]]:
    result = reconcile_month(config, month, mark)
    return result, write_month_results(config.workspace, result,
                                       renewals=not in_progress(month))


@exclusive("catalog")
def review_catalog(config: Config) -> list[ModelSeen]:
    """The models to review against the catalog (writes only the warehouse's catalog copy)."""
    return models_to_review(config)


@exclusive("report")
def report(config: Config, month: Month, customer_id: str | None = None,
           result: MonthResult | None = None) -> RenderOutcome:
    check_customer(config, customer_id)
    return render_month(config, month, customer_id, result)


@exclusive("report")
def render_portfolio_job(config: Config, month: Month) -> list[Path]:
    return render_portfolio(config, month)


@exclusive("run")
def run_month(config: Config, month: Month, customer_id: str | None = None,
              publish: bool = True, resend: bool = False) -> MonthlyRun:
    """The monthly job: take in the inbox and pull Lens, reconcile and write the files, then
    publish: render the reports and send the e-mails (`resend`: again, on purpose).

    With `customer_id` only that customer is taken in and rendered; the month is still
    reconciled for every customer, so reconciliation.csv is always whole.
    """
    intake = ingest(config, month, customer_id)
    result, written = reconcile(config, month)
    if not publish:
        return MonthlyRun(intake, result, written, None, None, list(result.changes))
    reports = report(config, month, customer_id, result)
    mail = send_month(config, result, resend, _sendable(month), customer_id=customer_id)
    # A late correction for an earlier month (taken in by this run, or by one that stopped)
    # is published too, and so is every later month whose replay it changes.
    refreshed = refresh_stale_months(config, skip_month=month)
    return MonthlyRun(intake, result, written + refreshed.written, reports,
                      mail + refreshed.mail, [*result.changes, *refreshed.changes],
                      in_progress(month))


# --- the steps one Airflow task each runs (keys and paths in, plain results out) -----------

@exclusive("take_inbox", per_customer=True)
def take_inbox_files(config: Config, customer_id: str | None = None) -> list[IntakeResult]:
    check_customer(config, customer_id)
    return _take_inbox(config, customer_id)


@exclusive("pull_lens", per_customer=True)
def pull_customer(config: Config, month: Month, customer_id: str,
                  lookup: CredentialLookup = LensCredentials.from_env,
                  not_visible: str | None = None) -> PullResult:
    """One customer's pull with its credential (`lookup`, by name); `not_visible`: the reason
    the run's tenant check gave for not asking Lens (the pull fails with it)."""
    [result] = pull_lens(config, month, customer_id, lookup=lookup, blocked={
        customer_id: not_visible} if not_visible else None) or [
        PullResult(customer_id, "", "skipped", 0, "outside the pull window: nothing pulled")]
    return result


def lens_customers(config: Config, customer_id: str | None = None) -> list[str]:
    return [c.id for c in config.contracts.customers
            if c.lens_tenant_id and customer_id in (None, c.id)]


def customers_of_month(config: Config, month: Month, customer_id: str | None = None
                       ) -> list[str]:
    return [c.id for c in config.contracts.in_effect(month) if customer_id in (None, c.id)]


@exclusive("reconcile")
def reconcile_for_readers(config: Config, month: Month) -> list[Path]:
    """The DAG's one reconciliation of the run: the result stored and written, then the
    warehouse copied for the render tasks (warehouse/published.py)."""
    _, written = reconcile(config, month)
    publish(config.workspace, month)
    return written


def render_from_copy(config: Config, month: Month, customer_id: str | None = None
                     ) -> RenderOutcome:
    """One customer's report (or, without `customer_id`, only the portfolio) from the copy
    `reconcile_for_readers` published, with the result it stored: no lock, no writer, nothing
    recomputed, so the DAG renders as many customers at once as it has workers."""
    copy = published_copy(config.workspace, month)
    with open_warehouse(config.workspace, read_only=True, path=copy) as con:
        result = stored_month(con, config, month)
    if result is None:
        raise RunError(f"the published copy for {month} holds no result: clear the DAG run's "
                       f"`reconcile` task for {month}")
    if customer_id is None:
        return RenderOutcome(written=render_portfolio(config, month, result, copy))
    check_customer(config, customer_id)
    return render_month(config, month, customer_id, result, copy)


@exclusive("send")
def send(config: Config, month: Month, resend: bool = False,
         login: tuple[str, str] | None = None, customer_id: str | None = None) -> MailOutcome:
    """The month's e-mails (with `customer_id`, that customer's only, as `run --customer`
    sends), of the result `reconcile` stored (what the reports show); a month never
    reconciled is computed."""
    with open_warehouse(config.workspace, read_only=True) as con:
        result = stored_month(con, config, month) or compute_month(con, config, month)
    return send_month(config, result, resend, _sendable(month), login, customer_id)


@exclusive("refresh")
def refresh_stale_months(config: Config, skip_month: Month | None = None,
                         login: tuple[str, str] | None = None) -> Refreshed:
    """Every month whose result is out of date — a snapshot of it or of an earlier month came
    in after it was reconciled: a late correction, an upload — but `skip_month`, which the
    caller publishes itself: reconciled again, the customers the new snapshots are of rendered
    again with the portfolio, and, when the month's reports went out before, what changed
    sent (a changed report, a true-up or RMA alert; nothing twice). A month not yet published
    waits for its own monthly run. Read from the warehouse, not from a run's memory: a run
    that stopped half way leaves the work to the next."""
    refreshed = Refreshed([], [], [], MailOutcome(0, 0, 0, 0))
    if not warehouse_exists(config.workspace):
        return refreshed
    with open_warehouse(config.workspace, read_only=True) as con:
        stale = run_sql(con, "reconcile/stale_months.sql", current=str(Month.of(
            datetime.now(UTC).date()))).fetchall()
    published = published_months(config)
    mail = refreshed.mail
    for month_text, customer_ids in stale:
        month = Month.parse(month_text)
        if month == skip_month:
            continue
        # Up to date only once published: a run stopped half way leaves the month stale.
        result, files = reconcile(config, month, mark=False)
        refreshed.months.append(month)
        refreshed.changes.extend(result.changes)
        refreshed.written.extend(files)
        covered = set(customer_ids) & {r.customer_id for r in result.rows}
        for customer_id in sorted(covered):
            refreshed.written.extend(report(config, month, customer_id, result).written)
        refreshed.written.extend(render_portfolio(config, month, result))
        if month in published and not in_progress(month):
            for customer_id in sorted(covered):
                mail += send_month(config, result, login=login, customer_id=customer_id)
        mark_reconciled(config, month, result.through_receipt)
    return replace(refreshed, mail=mail)


def published_months(config: Config) -> set[Month]:
    """The months whose reports went out."""
    if not warehouse_exists(config.workspace):
        return set()
    with open_warehouse(config.workspace, read_only=True) as con:
        return {Month.parse(m) for (m,) in run_sql(con, "delivery/mail_published_months.sql")
                .fetchall()}


def unpublished_months(config: Config, month: Month) -> list[Month]:
    """The months between the last one published before `month` and `month` that were never
    published although a contract covers them: runs the schedule missed. Before anything
    was ever published there is nothing to miss."""
    published = published_months(config)
    earlier = [m for m in published if m < month]
    if not earlier:
        return []
    gap = [max(earlier).plus(i) for i in range(1, max(earlier).months_until(month))]
    return [m for m in gap if m not in published
            and config.contracts.in_effect(m)]


@exclusive("send")
def send_rejection_notices(config: Config, intake: list[IntakeResult], month: Month | None = None,
                           login: tuple[str, str] | None = None) -> MailOutcome:
    """The partner's notice of each quarantined (or held) upload, sent once the intake that
    produced it is done (`ingest` for `month`, the upload DAG), not left for the month's run;
    filed under `month`, by default the current one (UTC)."""
    if not any(item.outcome in ("quarantined", "held") for item in intake):
        return MailOutcome(0, 0, 0, 0)
    return send_notices(config, month or Month.of(datetime.now(UTC).date()), login)
