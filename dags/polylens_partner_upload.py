"""
### Poly+ Enterprise partner uploads

A deferrable `FileSensor` waits (in the triggerer, holding no worker slot) for a file in a
customer's drop folder, `inbox/<customer_id>/` — not for hidden files or Office's `~$` lock
files, which intake leaves alone too. When one lands, the run takes in what is waiting (claim,
validate, load — or quarantine with a reason file; an upload still being written is left for
the next run), re-reconciles each month that got a new snapshot, re-renders those customers'
reports and the portfolio, sends what changed for a month whose reports already went out (a
changed report, a true-up or RMA alert; nothing twice), and sends the partner the rejection
notice of every quarantined file — all through the same e-mail path as the monthly DAG.

With partner.yaml `delivery: {review: required}` what changed for CSMs and customers (changed
reports, true-ups, RMA alerts, corrections) waits for a person instead (the rejection notices
still go out at once): `review` describes what waits for the months `refresh` re-published,
`approval` asks (Airflow's *Required actions*, or PATCH
`/api/v2/dags/polylens_partner_upload/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails`
with `{"chosen_options": ["Approve"]}`), and on **Approve** `send_approved` sends exactly what
waits for those months, once (as `python -m pipelines approve --month M`), if it is still
what was shown (else it fails, sending nothing: clear `review` to review again); **Reject**
sends nothing (the messages keep waiting). Nothing waiting, or review off: `review` skips
both. The approval holds no worker, pool slot or triggerer while it waits (task state
`awaiting_input`), but the next upload run waits for this one (uploads stay in the inbox,
nothing is lost), so it waits at most 24 hours (`response_timeout`); then it fails, without
retries (nothing is sent, its failure notice goes out; clear it to ask again, or approve with
`python -m pipelines approve --month M`).

With a drop folder on object storage (partner.yaml `drop_folder`, docs/deploying.md "Past one
machine") an `S3KeySensor` in reschedule mode watches `<inbox>/<customer_id>/` instead (the
connection `aws_default`, else the AWS_* variables), holding a worker slot only while it looks.

Why a sensor and not an asset watcher: Airflow's file watcher trigger deletes the file it saw,
and a partner's upload must never be deleted; the sensor only looks. Runs do not overlap
(`max_active_runs=1`); each watches for most of its 10-minute slot, so a file waits about a
poke interval. Files at the top of `inbox/` (outside a customer folder) are quarantined by the
next monthly run. The writer tasks share the pool `polyrecon_duckdb` with the monthly DAG and
wait for a run holding the workspace.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import dag, task

# The helpers both DAGs share sit beside them; not every Airflow component puts the DAGs folder
# on sys.path (`airflow dags list-import-errors --local` does not).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from polyrecon_airflow import (
    LOCK_WAIT,
    POOL,
    config,
    home,
    retrying_defaults,
    review_approval,
    user_errors_fail_fast,
    with_smtp_connection,
)

SLOT = timedelta(minutes=10)
REVIEW_WAIT = timedelta(hours=24)  # the approval's response_timeout: later runs wait for it


@dag(
    dag_id="polylens_partner_upload",
    schedule=SLOT,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["polyrecon", "poly-plus"],
    default_args=retrying_defaults(first_retry=timedelta(minutes=1)),
)
def polylens_partner_upload():
    from pipelines.jobs.dag_support import drop_folder_inbox

    watch = (SLOT - timedelta(seconds=30)).total_seconds()
    remote = drop_folder_inbox(home())
    # [!.~]: no hidden file (nor the claims under .claims/), no Office lock file
    # ("~$Devices.xlsx") starts a run.
    if remote:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        upload = S3KeySensor(task_id="wait_for_upload", bucket_key=f"{remote}[!.]*/[!.~]*",
                             wildcard_match=True, mode="reschedule", poke_interval=20,
                             timeout=watch, soft_fail=True)
    else:
        upload = FileSensor(task_id="wait_for_upload", filepath=f"{home()}/inbox/*/[!.~]*",
                            fs_conn_id="fs_default", deferrable=True, poke_interval=20,
                            timeout=watch, soft_fail=True)

    @task(pool=POOL)
    def take_uploads() -> list[dict]:
        from pipelines.jobs.dag_support import as_records
        from pipelines.jobs.monthly import take_inbox_files

        with user_errors_fail_fast():
            return as_records(take_inbox_files(config(), wait=LOCK_WAIT))

    @task(pool=POOL)
    def refresh(intake: list[dict]) -> dict:
        from pipelines.jobs.dag_support import refreshed_record
        from pipelines.jobs.monthly import refresh_stale_months

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast():
            return refreshed_record(refresh_stale_months(workspace_config, login=login,
                                                         wait=LOCK_WAIT))

    @task(pool=POOL)
    def notify_rejections(intake: list[dict], refreshed: dict) -> int:
        from pipelines.intake.take import IntakeResult
        from pipelines.jobs.monthly import send_rejection_notices

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast():
            return send_rejection_notices(workspace_config, [IntakeResult(**i) for i in intake],
                                          login=login, wait=LOCK_WAIT).sent

    @task.short_circuit(pool=POOL, ignore_downstream_trigger_rules=False)
    def review(refreshed: dict) -> dict | None:
        """What waits for a person's approval for the months `refresh` re-published; None
        (review off, nothing waiting) skips `approval` and `send_approved`."""
        from pipelines.jobs.dag_support import review_request

        with user_errors_fail_fast():
            return review_request(config(), refreshed["months"], None)

    @task(pool=POOL)
    def send_approved(request: dict, answer: dict) -> dict:
        from pipelines.jobs.dag_support import send_approved_messages

        workspace_config, login = with_smtp_connection(config())
        with user_errors_fail_fast():
            return send_approved_messages(workspace_config, request, answer, login=login,
                                          wait=LOCK_WAIT)

    intake = take_uploads()
    upload >> intake
    refreshed = refresh(intake)
    notify_rejections(intake, refreshed)
    reviewed = review(refreshed)
    approval = review_approval(REVIEW_WAIT)
    reviewed >> approval
    send_approved(reviewed, approval.output)


polylens_partner_upload()
