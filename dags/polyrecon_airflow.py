"""What the polyrecon DAGs share with Airflow (no DAG here: .airflowignore keeps the parser out).

- The workspace is `POLYRECON_HOME` in the environment, read the same way when the file is
  parsed and when a task runs: the sensor's folder, the schedule's run day, the failure notice's
  recipients and the tasks' workspace can never disagree.
- The Airflow connections: `polylens_api` (the partner's Lens client id and secret), one named
  as a customer's `lens_credential` for a customer with its own, and `smtp_default`.
- A user error (bad param, bad configuration) fails the task at once, without retries;
  anything else is retried with backoff (`retrying_defaults`), and a task that still fails
  sends a notice.
- A task that finds the workspace held by another run (a CLI run, the other DAG) waits for it.
- Every task that works records its time (`timed_task`) when POLYRECON_TIMINGS names a file.
- A failed task's notice goes out the way every other e-mail does: through `smtp_default` when
  it names a host, else partner.yaml's `smtp`, else an `.eml` file in `outbox/`.
- With partner.yaml `delivery: {review: required}` the e-mails to CSMs and customers wait for a
  person: `review_approval` is the approval both DAGs ask for (Airflow's human-in-the-loop).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

POOL = "polyrecon_duckdb"
LOCK_WAIT = 30 * 60  # seconds a task waits for another run holding the workspace


def home() -> str:
    """The workspace folder; a DAG file that cannot find it does not import (a visible error)."""
    value = os.environ.get("POLYRECON_HOME", "").strip()
    if not value:
        raise RuntimeError("POLYRECON_HOME is not set: set it to the workspace folder in the "
                           "environment of every Airflow component (scheduler, dag-processor, "
                           "triggerer, api-server and workers)")
    return value


def config():
    from pipelines.core.config import load_config
    from pipelines.core.workspace import Workspace

    return load_config(Workspace.resolve(home()))


@contextmanager
def timed_task():
    """The task's time and its stages, one line in POLYRECON_TIMINGS when that names a file
    (pipelines/core/timers.py): the DAG benchmark's split, the count of months computed."""
    from airflow.sdk import get_current_context

    from pipelines.core.timers import recorded

    ti = get_current_context()["ti"]
    map_index = ti.map_index if ti.map_index is not None else -1
    with recorded(ti.task_id, map_index):
        yield


@contextmanager
def user_errors_fail_fast():
    """A `UserError` of ours (configuration, arguments) fails the task for good: a retry would
    only repeat it. A held lock is no user error here: the jobs wait for it (LOCK_WAIT)."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.core.errors import ConfigError

    try:
        yield
    except ConfigError as error:
        raise AirflowFailException(str(error)) from None


def lens_credentials(name: str | None = None):
    """A Lens API credential (the pipelines' CredentialLookup): the partner's from the connection
    `polylens_api`, a customer's own (`lens_credential: NAME`) from the connection NAME (login =
    client id, password = client secret); else from the environment, LENS_CLIENT_ID /
    LENS_CLIENT_SECRET or LENS_<NAME>_CLIENT_ID / LENS_<NAME>_CLIENT_SECRET."""
    from pipelines.lens_api.client import LensCredentials

    connection = _connection("polylens_api" if name is None else name)
    if connection and connection.login and connection.password:
        return LensCredentials(connection.login, connection.password, name)
    return LensCredentials.from_env(name)


def with_smtp_connection(workspace_config):
    """The configuration sending through `smtp_default` when it names a host, and its login.
    Extra: `disable_tls` (no STARTTLS), `from_email`; port 465 means TLS from the start."""
    from pipelines.jobs.dag_support import with_smtp

    connection = _connection("smtp_default")
    if not connection or not connection.host:
        return workspace_config, None
    extra = connection.extra_dejson
    login = (connection.login, connection.password) if connection.login else None
    return with_smtp(workspace_config, connection.host, connection.port,
                     not extra.get("disable_tls", False), extra.get("from_email")), login


def _connection(conn_id: str):
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # noqa: BLE001 - no such connection: the other sources stand
        return None


def notify_failure(context) -> None:
    """on_failure_callback: the partner's contacts hear which task failed, and why."""
    from pipelines.delivery.mail import send_notice
    from pipelines.jobs.dag_support import alert_recipients

    ti, dag_run = context["ti"], context.get("dag_run")
    workspace_config, login = with_smtp_connection(config())
    recipients = alert_recipients(home())
    if not recipients:
        return
    error = context.get("exception")
    send_notice(workspace_config, "run_failed",
                f"[polyrecon] {ti.dag_id} failed: {ti.task_id} ({ti.run_id})", recipients,
                [f"The task {ti.task_id} of {ti.dag_id} failed in run {ti.run_id}"
                 + (f" (try {ti.try_number})." if getattr(ti, "try_number", None) else "."),
                 f"Problem: {error}" if error else "See the task's log in Airflow.",
                 ("Nothing was lost: fix the cause and clear the task, or trigger the DAG "
                 "again; a re-run sends nothing twice.")],
                key=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}",
                login=login, month=(dag_run.conf or {}).get("month") if dag_run else None)


def delivered(outcome) -> dict:
    """A send task's result (a MailOutcome, as a dict for XCom); a task whose e-mails could not
    all go out fails, so its retry (or the next run) sends what stays queued."""
    from dataclasses import asdict

    from pipelines.core.i18n import english

    if outcome.still_queued:
        raise RuntimeError(english(
            "%(num)s e-mail could not be sent; it stays queued and goes out with the retry or "
            "the next run", "%(num)s e-mails could not be sent; they stay queued and go out "
            "with the retry or the next run", outcome.still_queued))
    return asdict(outcome)


def retrying_defaults(first_retry: timedelta) -> dict:
    """Every DAG's default_args: transient faults (SMTP, Lens, a lock) retried twice with
    exponential backoff from `first_retry`, up to 30 minutes apart; the partner told of a task
    that failed for good."""
    return {"retries": 2, "retry_delay": first_retry, "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30), "on_failure_callback": notify_failure}


def review_approval(response_timeout: timedelta):
    """The approval between queuing a run's e-mails and sending them (`review` -> `approval` ->
    `send_approved`): subject and body are the `review` task's (the waiting messages, what
    changed, the portfolio). On Airflow 3.3 it waits in the task state `awaiting_input`: no
    worker, pool slot nor triggerer is held while it waits. Approve sends exactly what waits;
    Reject skips `send_approved` and sends nothing (the messages keep waiting); no answer within
    `response_timeout` fails the task, without retries (a retry would ask again), and its
    failure notice goes out like any task's."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    return ApprovalOperator(
        task_id="approval",
        subject="{{ ti.xcom_pull(task_ids='review')['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='review')['body'] }}",
        response_timeout=response_timeout,
        retries=0,
    )
