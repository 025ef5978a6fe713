"""
### Poly+ Enterprise monthly reconciliation

Runs at 06:00 UTC on `schedule.run_day` of each month (partner.yaml, default the 3rd) and
reconciles **the month before**. Trigger it by hand with `month` (YYYY-MM) to re-run any month
— results are a pure function of the stored snapshots, so a re-run gives the same files and
sends nothing twice — and with `customer` to take in and render a single customer.

1. `plan`: checks the params (a month that has not begun, an unknown customer: the run fails at
   once, no retries) and the schedule: a scheduled run that starts more than a day late (the
   DAG was paused, the scheduler was down) renders but sends nothing, and months a missed run
   never published are named — `check` then fails the run with what to trigger;
2. `take_inbox`: claim, validate (Great Expectations) and load the Lens exports and RMA logs
   waiting in `inbox/` (an upload still being written is left for the next run);
3. `tenants`: the Lens tenants each credential sees, mapped to the customers, as
   `python -m pipelines tenants` shows them; each problem is named in its log and its result
   (a customer whose tenant its credential cannot see, a tenant with devices and no customer).
   It fails nothing: a customer whose tenant is not visible is not pulled, its pull fails with
   the reason, and the others go on. Nothing is checked when nothing is pulled;
4. `pull_lens`: one mapped task per customer with a `lens_tenant_id` (Poly Lens GraphQL API;
   credentials from the connection `polylens_api`, or for a customer with `lens_credential:
   NAME` the connection NAME: login = client id, password = secret); a failed pull does not
   stop the others or the month: `check` fails the run at the end;
5. `reconcile` (only after the inbox was taken): the rules, once for the whole run, writing
   `reconciliation.csv`, `rma.csv` and renewal proposals; the result is stored and the
   warehouse copied read-only for the render tasks;
6. `render`: one mapped task per customer (HTML + PDF), then the partner's portfolio, from
   that copy and the stored result: outside the writer pool, as many at once as Airflow runs;
7. `send`: reports and alerts of the stored result (with the param `customer`, that
   customer's only, as `run --customer`) by e-mail through the connection `smtp_default`
   (else `smtp` in partner.yaml, else `.eml` files in `outbox/`);
8. `refresh_stale`: every month a late correction made out of date (its own, and the later
   months whose replay it changes) is reconciled, rendered and — when that month was
   published — what changed is sent;
9. `review` → `approval` → `send_approved`, only with partner.yaml
   `delivery: {review: required}` (else `review` skips both and the run is as it always was):
   `send` and `refresh_stale` then send the operations notices (rejected files, missing
   inventory) at once but leave every e-mail to CSMs and customers (reports, true-ups, RMA
   alerts, corrections) waiting, and `approval` asks a person whether they go out (Airflow's
   *Required actions* page, or the REST API: PATCH
   `/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails` with
   `{"chosen_options": ["Approve"]}`). Its body is what `python -m pipelines review --month M`
   prints for the months the run touched (its month and those `refresh_stale` re-published):
   per customer the waiting messages, what changed, the held files, and the portfolio's path,
   after the run's problems (they also fail it at the end). **Approve**: `send_approved` sends
   exactly what waits for those months, once (as `python -m pipelines approve --month M`
   does) — if it is still what was shown: when another run composed those months again
   meanwhile, it sends nothing and fails (clear `review` to review again). **Reject**:
   nothing is sent; the messages keep waiting (`python -m pipelines review`). Nothing
   waiting: no approval is asked. The approval waits in the task state
   `awaiting_input`, holding no worker, pool slot or triggerer, for at most 3 days
   (`response_timeout`); then it fails, without retries (nothing is sent, its failure notice
   goes out; clear it to ask again). While it waits, the next run of this DAG waits too
   (`max_active_runs=1`).

Every task that writes the DuckDB warehouse (and `review`, which reads it) runs in the pool
`polyrecon_duckdb` and waits for another run holding the workspace (a CLI run, the upload
DAG); `render` and `portfolio` write no warehouse and take no slot. On DuckLake
(docs/deploying.md "Past one machine") give the pool more slots: the `pull_lens` tasks, each
holding the lock for its customer only, then run side by side, and the render tasks read the
lake at the snapshot `reconcile` published.
Tasks pass months, customer ids and paths, never DataFrames.
The workspace is `POLYRECON_HOME` in the environment of every Airflow component. A failed task
notifies the partner contacts the way every e-mail goes.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

# The helpers both DAGs share sit beside them; not every Airflow component puts the DAGs folder
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
    review_approval,
    timed_task,
    user_errors_fail_fast,
    with_smtp_connection,
)

REVIEW_WAIT = timedelta(days=3)  # the approval's response_timeout (see the docstring)


def _schedule() -> str:
    from pipelines.jobs.dag_support import monthly_cron

    return monthly_cron(home())


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
    default_args=retrying_defaults(first_retry=timedelta(minutes=2)),
)
def polylens_monthly_reconciliation():
    @task(retries=0)
    def plan(params=None, dag_run=None) -> dict:
        from pipelines.jobs.dag_support import plan_run

        with user_errors_fail_fast(), timed_task():
            return plan_run(config(), params.get("month"), params.get("customer"),
                            dag_run.run_after, dag_run.run_type == "scheduled",
                            pendulum.now("UTC"))

    @task(pool=POOL)
    def take_inbox(plan: dict) -> list[dict]:
        from pipelines.jobs.dag_support import as_records
        from pipelines.jobs.monthly import take_inbox_files

        with user_errors_fail_fast(), timed_task():
            return as_records(take_inbox_files(config(), plan["customer"], wait=LOCK_WAIT))

    @task
    def lens_customers(plan: dict) -> list[str]:
        from pipelines.jobs.monthly import lens_customers

        return lens_customers(config(), plan["customer"])

    @task
    def tenants(plan: dict) -> dict:
        from pipelines.core.months import Month
        from pipelines.jobs.tenants import check_before_pulls

        with user_errors_fail_fast(), timed_task():
            return check_before_pulls(config(), Month.parse(plan["month"]), plan["customer"],
                                      lens_credentials)

    @task(pool=POOL, map_index_template="{{ customer_id }}")
    def pull_lens(customer_id: str, plan: dict, checked: dict) -> dict:
        from dataclasses import asdict

        from airflow.sdk import get_current_context

        from pipelines.core.months import Month
        from pipelines.jobs.monthly import pull_customer

        get_current_context()["customer_id"] = customer_id
        with user_errors_fail_fast(), timed_task():
            return asdict(pull_customer(config(), Month.parse(plan["month"]), customer_id,
                                        lens_credentials, checked["blocked"].get(customer_id),
                                        wait=LOCK_WAIT))

    @task(trigger_rule="all_done")
    def pulls_done(pulls: list[dict]) -> list[dict]:
        """However the pulls went: the month is reconciled with what is stored; `check` fails
        the run at the end for a pull that failed."""
        return list(pulls or [])

    @task(pool=POOL)
    def reconcile(plan: dict, intake: list[dict], pulls: list[dict]) -> list[str]:
        from pipelines.core.months import Month
        from pipelines.jobs.monthly import reconcile_for_readers

        with user_errors_fail_fast(), timed_task():
            written = reconcile_for_readers(config(), Month.parse(plan["month"]), wait=LOCK_WAIT)
        return [str(path) for path in written]

    @task
    def customers(plan: dict, written: list[str]) -> list[str]:
        from pipelines.core.months import Month
        from pipelines.jobs.monthly import customers_of_month

        return customers_of_month(config(), Month.parse(plan["month"]), plan["customer"])

    # No pool: renders read the copy `reconcile` published, so they run side by side.
    @task(map_index_template="{{ customer_id }}")
    def render(customer_id: str, plan: dict) -> list[str]:
        from airflow.sdk import get_current_context

        from pipelines.core.months import Month
        from pipelines.jobs.monthly import render_from_copy

        get_current_context()["customer_id"] = customer_id
        with user_errors_fail_fast(), timed_task():
            outcome = render_from_copy(config(), Month.parse(plan["month"]), customer_id)
        if outcome.failed:
            raise RuntimeError(f"report for {customer_id} failed: {outcome.failed[0][1]}")
        return [str(path) for path in outcome.written]

    @task
    def portfolio(plan: dict, rendered: list) -> list[str]:
        from pipelines.core.months import Month
        from pipelines.jobs.monthly import render_from_copy

        if plan["customer"]:
            return []
        with user_errors_fail_fast(), timed_task():
            outcome = render_from_copy(config(), Month.parse(plan["month"]))
        return [str(path) for path in outcome.written]

    @task(pool=POOL)
    def send(plan: dict, reports: list[str]) -> dict:
        from pipelines.core.months import Month
        from pipelines.jobs.monthly import send

        if not plan["send"]:
            return {"sent": 0, "skipped": "a late scheduled run sends nothing (see check)"}
        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast(), timed_task():
            outcome = send(workspace_config, Month.parse(plan["month"]), login=login,
                           customer_id=plan["customer"], wait=LOCK_WAIT)
        return delivered(outcome)

    @task(pool=POOL)
    def refresh_stale(plan: dict, intake: list[dict], sent: dict) -> dict:
        """After the run's own month went out, or waits for review (`intake` and `sent` order
        it); what it reconciled again is reviewed with it."""
        from pipelines.core.months import Month
        from pipelines.jobs.dag_support import refreshed_record
        from pipelines.jobs.monthly import refresh_stale_months

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast(), timed_task():
            return refreshed_record(refresh_stale_months(
                workspace_config, skip_month=Month.parse(plan["month"]), login=login,
                wait=LOCK_WAIT))

    @task.short_circuit(pool=POOL, ignore_downstream_trigger_rules=False)
    def review(plan: dict, pulls: list[dict], refreshed: dict) -> dict | None:
        """What waits for a person's approval for the months the run touched; None (review
        off, nothing waiting) skips `approval` and `send_approved`."""
        from pipelines.jobs.dag_support import review_request, run_problems

        with user_errors_fail_fast(), timed_task():
            return review_request(config(), [plan["month"], *refreshed["months"]],
                                  plan["customer"], run_problems(plan["notes"], pulls))

    @task(pool=POOL)
    def send_approved(request: dict, answer: dict) -> dict:
        from pipelines.jobs.dag_support import send_approved_messages

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast(), timed_task():
            return send_approved_messages(workspace_config, request, answer, login=login,
                                          wait=LOCK_WAIT)

    # Runs when the review was skipped or rejected too; fails the run for what went wrong.
    @task(retries=0, trigger_rule="none_failed")
    def check(plan: dict, pulls: list[dict], refreshed: dict) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.jobs.dag_support import run_problems

        problems = run_problems(plan["notes"], pulls)
        if problems:
            raise AirflowFailException("; ".join(problems))

    planned = plan()
    intake = take_inbox(planned)
    pulls = pull_lens.partial(plan=planned, checked=tenants(planned)).expand(
        customer_id=lens_customers(planned))
    intake >> pulls
    pulled = pulls_done(pulls)
    written = reconcile(planned, intake, pulled)
    rendered = render.partial(plan=planned).expand(customer_id=customers(planned, written))
    sent = send(planned, portfolio(planned, rendered))
    refreshed = refresh_stale(planned, intake, sent)
    reviewed = review(planned, pulled, refreshed)
    approval = review_approval(REVIEW_WAIT)
    reviewed >> approval
    approved = send_approved(reviewed, approval.output)
    approved >> check(planned, pulled, refreshed)


polylens_monthly_reconciliation()
