"""
### Poly+ Enterprise monthly reconciliation

Runs at 06:00 UTC on `schedule.run_day` of each month (partner.yaml, default the 3rd) and
reconciles **the month before**. Trigger it by hand with `month` (YYYY-MM) to re-run any month
— results are a pure function of the stored snapshots, so a re-run gives the same files and
sends nothing twice — and with `customer` to take in and render a single customer.

1. `take_inbox`: claim, validate (Great Expectations) and load the Lens exports and RMA logs
   waiting in `inbox/` — validation and load are one transaction per file (write, audit,
   publish), so they are one task;
2. `pull_lens`: one mapped task per customer with a `lens_tenant_id` (Poly Lens GraphQL API;
   credentials from the connection `polylens_api`: login = client id, password = secret);
3. `reconcile`: the rules, writing `reconciliation.csv`, `rma.csv` and renewal proposals;
4. `render`: one mapped task per customer (HTML + PDF), then the partner's portfolio;
5. `send`: reports and alerts by e-mail through the connection `smtp_default` (else `smtp` in
   partner.yaml, else `.eml` files in `outbox/`).

Every task that writes the DuckDB warehouse runs in the pool `polyrecon_duckdb` (one slot:
DuckDB allows one writing process per file); tasks pass months, customer ids and paths, never
DataFrames. The workspace is `POLYRECON_HOME` (environment, else the Airflow Variable
`POLYRECON_HOME`). A failed task notifies the partner contacts through the SMTP provider.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, Variable, dag, task

POOL = "polyrecon_duckdb"


def _home() -> str:
    """In a task: POLYRECON_HOME from the environment, else the Airflow Variable."""
    from pipelines.dag_support import workspace_home

    return workspace_home(Variable.get("POLYRECON_HOME", default=None))


def _parse_time_home() -> str:
    # No Variable look-ups while the file is parsed: the environment only.
    from pipelines.dag_support import workspace_home

    return workspace_home()


def _config():
    from pipelines.config import load_config
    from pipelines.workspace import Workspace

    return load_config(Workspace.resolve(_home()))


def _failure_notifiers() -> list:
    from pipelines.dag_support import alert_recipients

    recipients = alert_recipients(_parse_time_home())
    if not recipients:
        return []
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return [SmtpNotifier(to=recipients, subject="[polyrecon] {{ dag.dag_id }} failed: "
                                                "{{ ti.task_id }} ({{ run_id }})")]


def _schedule() -> str:
    from pipelines.dag_support import monthly_cron

    return monthly_cron(_parse_time_home())


@dag(
    dag_id="polylens_monthly_reconciliation",
    schedule=_schedule(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["polyrecon", "poly-plus"],
    params={
        "month": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                       description="Report month YYYY-MM (default: the month before the run)"),
        "customer": Param(None, type=["null", "string"],
                          description="Only this customer (default: all)"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2),
                  "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=30),
                  "on_failure_callback": _failure_notifiers()},
)
def polylens_monthly_reconciliation():
    @task
    def plan(params=None, dag_run=None) -> dict:
        from pipelines.dag_support import report_month

        return {"month": report_month(params.get("month"), dag_run.run_after),
                "customer": params.get("customer")}

    @task(pool=POOL)
    def take_inbox(plan: dict) -> list[dict]:
        from pipelines.dag_support import as_records
        from pipelines.jobs import take_inbox_files

        return as_records(take_inbox_files(_config(), plan["customer"]))

    @task
    def lens_customers(plan: dict) -> list[str]:
        from pipelines.jobs import lens_customers

        return lens_customers(_config(), plan["customer"])

    @task(pool=POOL, retries=3)
    def pull_lens(customer_id: str, plan: dict) -> dict:
        from dataclasses import asdict

        from pipelines.ingest_lens import LensCredentials
        from pipelines.jobs import pull_customer
        from pipelines.months import Month

        credentials = _lens_credentials() or LensCredentials.from_env()
        result = pull_customer(_config(), Month.parse(plan["month"]), customer_id, credentials)
        if result.outcome == "failed":
            raise RuntimeError(f"Lens pull for {customer_id} failed: {result.detail}")
        return asdict(result)

    @task(pool=POOL, trigger_rule="all_done")
    def reconcile(plan: dict) -> list[str]:
        from pipelines.jobs import reconcile
        from pipelines.months import Month

        _, written = reconcile(_config(), Month.parse(plan["month"]))
        return [str(path) for path in written]

    @task
    def customers(plan: dict, written: list[str]) -> list[str]:
        from pipelines.jobs import customers_of_month
        from pipelines.months import Month

        return customers_of_month(_config(), Month.parse(plan["month"]), plan["customer"])

    @task(pool=POOL)
    def render(customer_id: str, plan: dict) -> list[str]:
        from pipelines.jobs import report
        from pipelines.months import Month

        outcome = report(_config(), Month.parse(plan["month"]), customer_id)
        if outcome.failed:
            raise RuntimeError(f"report for {customer_id} failed: {outcome.failed[0][1]}")
        return [str(path) for path in outcome.written]

    @task(pool=POOL)
    def portfolio(plan: dict, rendered: list) -> list[str]:
        from pipelines.months import Month
        from pipelines.render import render_portfolio

        if plan["customer"]:
            return []
        return [str(path) for path in render_portfolio(_config(), Month.parse(plan["month"]))]

    @task(pool=POOL)
    def send(plan: dict, intake: list[dict], reports: list[str]) -> dict:
        from dataclasses import asdict

        from pipelines.jobs import send
        from pipelines.months import Month

        # The notices of quarantined uploads come from the intake ledger: `intake` only
        # orders this task after the inbox was taken.
        config, login = _with_smtp_connection(_config())
        outcome = send(config, Month.parse(plan["month"]), login=login)
        if outcome.still_queued:
            raise RuntimeError(f"{outcome.still_queued} e-mails could not be sent; they stay "
                               f"queued and go out with the retry or the next run")
        return asdict(outcome)

    planned = plan()
    intake = take_inbox(planned)
    pulls = pull_lens.partial(plan=planned).expand(customer_id=lens_customers(planned))
    intake >> pulls
    written = reconcile(planned)
    pulls >> written
    rendered = render.partial(plan=planned).expand(customer_id=customers(planned, written))
    send(planned, intake, portfolio(planned, rendered))


def _lens_credentials():
    """Lens API client credentials from the connection `polylens_api`, if there is one."""
    from airflow.sdk import Connection

    from pipelines.ingest_lens import LensCredentials

    try:
        connection = Connection.get("polylens_api")
    except Exception:  # noqa: BLE001 - no such connection: the environment may have them
        return None
    if connection and connection.login and connection.password:
        return LensCredentials(connection.login, connection.password)
    return None


def _with_smtp_connection(config):
    """The connection `smtp_default`, when it names a host, carries the e-mail."""
    from airflow.sdk import Connection

    from pipelines.dag_support import with_smtp

    try:
        connection = Connection.get("smtp_default")
    except Exception:  # noqa: BLE001 - no such connection: partner.yaml's smtp stands
        return config, None
    if not connection or not connection.host:
        return config, None
    extra = connection.extra_dejson
    login = (connection.login, connection.password) if connection.login else None
    return with_smtp(config, connection.host, connection.port,
                     not extra.get("disable_tls", False), extra.get("from_email")), login


polylens_monthly_reconciliation()
