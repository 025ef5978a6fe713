"""
### Poly Lens tenant check, a few days before run day

A customer who never accepted the partner's Lens credential, or revoked it, shows up only as a
failed pull on run day; a tenant nobody mapped is never reconciled. This DAG looks in time: at
06:00 UTC three days before `schedule.run_day` (partner.yaml; a run day before the 4th: day
`run_day + 25` of the month before, three to six days ahead), so a grant can still be fixed.

1. `tenants`: every tenant each Lens credential sees (the connection `polylens_api`, and for a
   customer with `lens_credential: NAME` the connection NAME; else the `LENS_…` variables),
   mapped to contracts.yaml, as `python -m pipelines tenants` shows them; each problem named in
   its log;
2. `notify`: the partner is e-mailed each problem — a customer whose tenant its credential
   cannot see (to the customer's partner contacts), a tenant with devices and no customer, a
   credential that cannot list its tenants (to `partner.contact_email`) — through the mail
   ledger, once per problem and month: the month the next monthly run reconciles. A re-run, or
   a trigger by hand, sends nothing twice. Problems do not fail the run: the notice is the
   outcome; the monthly run then names them again in its own `tenants` task.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

# The helpers the DAGs share sit beside them; not every Airflow component puts the DAGs folder
# on sys.path (`airflow dags list-import-errors --local` does not).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from polyrecon_airflow import (
    LOCK_WAIT,
    POOL,
    config,
    delivered,
    home,
    lens_credentials,
    retrying_defaults,
    timed_task,
    user_errors_fail_fast,
    with_smtp_connection,
)


def _schedule() -> str:
    from pipelines.jobs.dag_support import tenant_check_cron

    return tenant_check_cron(home())


@dag(
    dag_id="polylens_tenant_check",
    schedule=_schedule(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["polyrecon", "poly-plus"],
    default_args=retrying_defaults(first_retry=timedelta(minutes=2)),
)
def polylens_tenant_check():
    @task
    def tenants(dag_run=None) -> dict:
        from pipelines.jobs.tenants import scheduled_check

        with user_errors_fail_fast(), timed_task():
            return scheduled_check(config(), dag_run.run_after.date(), lens_credentials)

    @task(pool=POOL)
    def notify(check: dict) -> dict:
        from pipelines.jobs.tenants import notify as send_notices

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast(), timed_task():
            outcome = send_notices(workspace_config, check, login=login, wait=LOCK_WAIT)
        return delivered(outcome)

    notify(tenants())


polylens_tenant_check()
