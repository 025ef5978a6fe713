"""What a real deployment showed that `dags test` alone did not (issue 14): uploads still being
written, late corrections for earlier months, late or missed scheduled runs, failure notices,
user errors, the upload sensor's pattern, WeasyPrint's log chatter. The pipeline's half through
the CLI; the DAGs' half under real Airflow (`airflow dags test`, `airflow dags list-import-errors`)
with a real SMTP server on loopback."""
import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from builders import (
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    reconciliation,
    row_for,
    run_airflow,
    write_yaml,
)
from fake_smtp import Server

from pipelines.core.config import load_config
from pipelines.core.errors import ConfigError
from pipelines.intake.inbox import settled
from pipelines.jobs.dag_support import plan_run

ROOT = Path(__file__).resolve().parent.parent
VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}


def _body(path: Path) -> str:
    return message_from_bytes(path.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()


# --- 1. half-written uploads -------------------------------------------------------------------

def test_an_upload_still_being_written_is_left_until_it_is_complete(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    write_yaml(workspace.partner_file, {"inbox": {"settle_seconds": 1}})
    path = workspace.inbox / "acme" / "lens-2026-03.csv"
    path.parent.mkdir(parents=True)
    rows = export_text(devices("Poly Studio X30", 86)).splitlines(keepends=True)
    path.write_text("".join(rows[:44]))  # the header and 43 of 86 rows, as the deployment saw
    run_ended = threading.Event()

    def keep_writing():
        """The copy goes on for as long as the run lasts, however long it takes to reach the
        inbox: the rest of the rows, then its modification time, every 50 ms."""
        for row in rows[44:]:
            with path.open("a") as handle:
                handle.write(row)
            if run_ended.wait(0.05):
                return
        while not run_ended.wait(0.05):
            os.utime(path)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert cli(workspace, "run", "--month", "2026-03") == 0
    finally:
        run_ended.set()
        writer.join()
    out = capsys.readouterr().out
    assert "1 waiting" in out
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["status"] == "NO_DATA"
    assert path.exists()
    assert not list(workspace.archive.rglob("*.csv"))
    with path.open("a") as handle:  # the copy finishes (if the run was quicker than it)
        handle.writelines(rows[len(path.read_text().splitlines(keepends=True)):])
    os.utime(path, (time.time() - 60,) * 2)  # the copy finished a minute ago
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["devices_counted"] \
        == "86"


def test_settling_waits_once_and_only_for_young_files(tmp_path):
    old, young = tmp_path / "old.csv", tmp_path / "young.csv"
    old.write_text("a")
    os.utime(old, (time.time() - 600,) * 2)
    young.write_text("b")
    waits = []
    ready, writing = settled([old, young], 2, sleep=waits.append)
    assert (ready, writing) == ([old, young], [])
    assert len(waits) == 1
    assert 0 < waits[0] <= 2
    waits.clear()
    assert settled([old], 2, sleep=waits.append) == ([old], [])
    assert waits == []


# --- 2. a late correction for an earlier month -----------------------------------------------

def test_a_run_publishes_every_month_its_inbox_touched(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-09.csv", export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-09") == 0
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    # A correction for September arrives before October's run is repeated.
    drop(workspace, "acme", "lens-2026-09-corrected.csv",
         export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    september = row_for(reconciliation(workspace, "2026-09"), "acme", "video")
    assert (september["status"], september["devices_counted"]) == ("TRUE_UP", "12")
    assert (workspace.home / "reports/2026-09/portfolio.html").exists()
    [alert] = (workspace.outbox / "2026-09").glob("true_up-acme-*.eml")
    assert "+2 devices" in alert.read_text()
    reports = sorted((workspace.outbox / "2026-09").glob("report-acme-*.eml"))
    assert len(reports) == 2  # September's report again, with the corrected figures
    # Nothing is sent twice: the same run again adds no message.
    before = sorted(p.name for p in workspace.outbox.rglob("*.eml"))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    assert sorted(p.name for p in workspace.outbox.rglob("*.eml")) == before


def test_an_upload_for_a_month_not_yet_published_sends_nothing_early(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-09.csv", export_text(devices("Poly Studio X30", 12)))
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    assert (workspace.home / "reports/2026-09/reconciliation.csv").exists()  # rendered
    assert not (workspace.outbox / "2026-09").exists()  # its own run sends it


# --- 3. late and missed scheduled runs ---------------------------------------------------------

def _published(tmp_path, months):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    for month in months:
        drop(workspace, "acme", f"lens-{month}.csv", export_text(devices("Poly Studio X30", 10)))
        assert cli(workspace, "run", "--month", month) == 0
    return load_config(workspace)


def test_a_scheduled_run_started_late_sends_nothing_and_says_why(tmp_path):
    config = _published(tmp_path, ["2026-09"])
    slot = datetime(2026, 11, 3, 6, tzinfo=UTC)
    on_time = plan_run(config, None, None, slot, True, slot + timedelta(minutes=5))
    assert (on_time["month"], on_time["send"], on_time["notes"]) == ("2026-10", True, [])
    unpaused = plan_run(config, None, None, slot, True, datetime(2026, 12, 1, 9,
                                                                  tzinfo=UTC))
    assert unpaused["send"] is False
    assert 'started 28 days after its time' in unpaused["notes"][0]
    assert '{"month": "2026-10"}' in unpaused["notes"][0]
    by_hand = plan_run(config, "2026-10", None, slot, False, datetime(2026, 12, 1, 9,
                                                                       tzinfo=UTC))
    assert (by_hand["send"], by_hand["notes"]) == (True, [])


def test_a_month_the_schedule_missed_is_named(tmp_path):
    config = _published(tmp_path, ["2026-08"])
    slot = datetime(2026, 11, 3, 6, tzinfo=UTC)
    planned = plan_run(config, None, None, slot, True, slot)
    assert [note.split(" ")[0] for note in planned["notes"]] == ["2026-09"]


def test_plan_refuses_bad_params_before_anything_runs(tmp_path):
    config = _published(tmp_path, [])
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(ConfigError, match="no customer 'ghost'"):
        plan_run(config, "2026-10", "ghost", now, False, now)
    with pytest.raises(ConfigError, match="month 2027-03 has not begun"):
        plan_run(config, "2027-03", None, now, False, now)


# --- 10. the log carries our lines, not WeasyPrint's ---------------------------------------------

def test_rendering_logs_no_weasyprint_chatter(tmp_path, caplog):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    with caplog.at_level(logging.INFO):
        assert cli(workspace, "run", "--month", "2026-03") == 0
    assert (workspace.home / "reports/2026-03/acme.pdf").exists()
    chatter = [r for r in caplog.records if r.name.startswith(("weasyprint", "fontTools"))]
    assert chatter == []


# --- the DAGs under real Airflow ---------------------------------------------------------------

def test_without_polyrecon_home_the_dags_do_not_import_and_say_why(airflow_env):
    env = {key: value for key, value in airflow_env.items() if key != "POLYRECON_HOME"}
    done = run_airflow(env, "dags", "list-import-errors", "--local", "-o", "json")
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert {Path(e["filepath"]).name for e in errors} == {
        "polylens_monthly_reconciliation.py", "polylens_partner_upload.py",
        "polylens_tenant_check.py"}
    assert all("POLYRECON_HOME is not set" in e["error"] for e in errors)


def test_dag_structure_what_a_scheduler_would_do(airflow_env, tmp_path):
    """Checked on the DAGs as Airflow parses them: take_inbox must succeed before reconcile
    publishes; the sensor ignores Office lock files; mapped tasks are named by customer."""
    script = """
import glob, json, os, pathlib
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
monthly, upload = bag.dags["polylens_monthly_reconciliation"], bag.dags["polylens_partner_upload"]
reconcile = monthly.get_task("reconcile")
sensor = upload.get_task("wait_for_upload")
folder = pathlib.Path(os.environ["POLYRECON_HOME"]) / "inbox" / "acme"
folder.mkdir(parents=True)
(folder / "~$Devices.xlsx").write_text("lock")
(folder / ".DS_Store").write_text("mac")
before = glob.glob(sensor.filepath)
(folder / "lens-2026-10.csv").write_text("x")
print(json.dumps({
    "reconcile_rule": str(reconcile.trigger_rule),
    "reconcile_up": sorted(reconcile.upstream_task_ids),
    "plan_retries": monthly.get_task("plan").retries,
    "map_names": [monthly.get_task(t).map_index_template for t in ("pull_lens", "render")],
    "sensor_timeout": sensor.timeout, "poke": sensor.poke_interval,
    "lock_files_seen": before,
    "upload_seen": [pathlib.Path(p).name for p in glob.glob(sensor.filepath)]}))
"""
    env = {**airflow_env, "POLYRECON_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["reconcile_rule"].lower().endswith("all_success")
    assert "take_inbox" in found["reconcile_up"]
    assert found["plan_retries"] == 0
    assert found["map_names"] == ["{{ customer_id }}"] * 2
    assert found["lock_files_seen"] == []
    assert found["upload_seen"] == ["lens-2026-10.csv"]
    assert 540 <= found["sensor_timeout"] < 600
    assert found["poke"] <= 30


def _smtp_env(airflow_env, home: Path, server: Server) -> dict:
    return {**airflow_env, "POLYRECON_HOME": str(home),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": server.port,
                "extra": {"disable_tls": True, "from_email": "ops@nordlicht.example"}})}


def test_a_bad_param_fails_at_once_and_the_notice_arrives_through_smtp_default(
        airflow_env, tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    server = Server()
    server.start()
    try:
        started = time.monotonic()
        done = run_airflow(_smtp_env(airflow_env, workspace.home, server), "dags", "test",
                        "polylens_monthly_reconciliation", "--conf",
                        json.dumps({"month": "2026-10", "customer": "ghost"}))
        took = time.monotonic() - started
        messages = list(server.inbox.messages)
    finally:
        server.stop()
    log = done.stdout + done.stderr
    assert "state=failed" in log
    assert "no customer 'ghost'" in log
    assert took < 120  # no retries with minutes of delay
    [(recipients, notice)] = [m for m in messages if "failed: plan" in m[1]["Subject"]]
    assert recipients == ["service@partner.example"]
    assert "--customer: there is no customer 'ghost'" in notice.get_body(("plain",)).get_content()


def test_upload_dag_sends_through_smtp_default_refreshes_the_portfolio_and_waits_for_a_lock(
        airflow_env, tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-10") == 0  # published (to outbox/)
    drop(workspace, "acme", "lens-2026-10-corrected.csv",
         export_text(devices("Poly Studio X30", 12)))
    drop(workspace, "acme", "notes-2026-10.csv", "just some notes\n")
    server = Server()
    server.start()
    lock = (workspace.home / ".polyrecon.lock").open("a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # a CLI run holds the workspace for a few seconds
    releaser = threading.Timer(8, lambda: fcntl.flock(lock, fcntl.LOCK_UN))
    releaser.start()
    try:
        done = run_airflow(_smtp_env(airflow_env, workspace.home, server), "dags", "test",
                        "polylens_partner_upload")
        subjects = sorted(m["Subject"] for _, m in server.inbox.messages)
    finally:
        releaser.cancel()
        lock.close()
        server.stop()
    assert "state=success" in done.stdout + done.stderr, done.stderr[-3000:]
    assert any(s.startswith("[Partner] File rejected for Acme GmbH: notes-2026-10.csv")
               for s in subjects), subjects
    assert any(s.startswith("[Partner] True-up Acme GmbH Video 2026-10") for s in subjects)
    row = row_for(reconciliation(workspace, "2026-10"), "acme", "video")
    assert (row["status"], row["devices_counted"]) == ("TRUE_UP", "12")
    portfolio = (workspace.home / "reports/2026-10/portfolio.html").read_text()
    assert "TRUE_UP" in portfolio
