"""
### Poly+ Enterprise partner uploads

Every 10 minutes a deferrable `FileSensor` waits (in the triggerer, holding no worker slot) for
a file in a customer's drop folder, `inbox/<customer_id>/`. When one lands, the run takes in
what is waiting (claim, validate, load — or quarantine with a reason file), re-reconciles each
month that got a new snapshot, re-renders those customers' reports, and sends the partner the
rejection notice of every quarantined file.

Why a sensor and not an asset watcher: Airflow's file watcher trigger deletes the file it saw,
and a partner's upload must never be deleted; the sensor only looks. Runs do not overlap
(`max_active_runs=1`), and a sensor that sees nothing for 9 minutes ends the run as skipped.
Files at the top of `inbox/` (outside a customer folder) are quarantined by the next monthly
run. The writer tasks share the pool `polyrecon_duckdb` with the monthly DAG.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import Variable, dag, task

POOL = "polyrecon_duckdb"


def _home() -> str:
    """In a task: POLYRECON_HOME from the environment, else the Airflow Variable."""
    from pipelines.dag_support import workspace_home

    return workspace_home(Variable.get("POLYRECON_HOME", default=None))


def _config():
    from pipelines.config import load_config
    from pipelines.workspace import Workspace

    return load_config(Workspace.resolve(_home()))


def _drop_folders() -> str:
    from pipelines.dag_support import workspace_home

    return f"{workspace_home()}/inbox/*/*"  # parse time: the environment only


@dag(
    dag_id="polylens_partner_upload",
    schedule=timedelta(minutes=10),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["polyrecon", "poly-plus"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1),
                  "retry_exponential_backoff": True},
)
def polylens_partner_upload():
    upload = FileSensor(task_id="wait_for_upload", filepath=_drop_folders(), fs_conn_id="fs_default",
                        deferrable=True, poke_interval=30, timeout=9 * 60, soft_fail=True)

    @task(pool=POOL)
    def take_uploads() -> list[dict]:
        from pipelines.dag_support import as_records
        from pipelines.jobs import take_inbox_files

        return as_records(take_inbox_files(_config()))

    @task(pool=POOL)
    def refresh(intake: list[dict]) -> list[str]:
        from pipelines.jobs import refresh_after_uploads
        from pipelines.intake import IntakeResult

        written = refresh_after_uploads(_config(), [IntakeResult(**i) for i in intake])
        return [str(path) for path in written]

    @task(pool=POOL)
    def notify_rejections(intake: list[dict], written: list[str]) -> int:
        from pipelines.intake import IntakeResult
        from pipelines.jobs import send_rejection_notices

        return send_rejection_notices(_config(), [IntakeResult(**i) for i in intake])

    intake = take_uploads()
    upload >> intake
    notify_rejections(intake, refresh(intake))


polylens_partner_upload()
