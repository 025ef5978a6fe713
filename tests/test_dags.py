"""The DAGs under real Airflow: a real metadata DB, `airflow dags test`, the fake Lens API and a
real SMTP server on loopback; the DAG's outputs equal `python -m pipelines run`'s."""
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import yaml
from builders import build_once, cli, copy_tree, run_airflow, write_yaml
from fake_lens import FakeLens, expected_counts
from fake_smtp import Server
from lens_partner import OWN_CLIENT, partner_lens, partner_workspace

ROOT = Path(__file__).resolve().parent.parent


def test_dags_load_with_the_expected_tasks(airflow_env, tmp_path):
    env = {**airflow_env, "POLYRECON_HOME": str(tmp_path)}
    errors = run_airflow(env, "dags", "list-import-errors", "--local", "-o", "json")
    assert errors.returncode == 0
    assert json.loads(errors.stdout.strip().splitlines()[-1]) == []  # after any warnings
    monthly = run_airflow(env, "tasks", "list", "polylens_monthly_reconciliation")
    assert set(monthly.stdout.split()) >= {"plan", "take_inbox", "lens_customers", "tenants",
                                           "pull_lens", "reconcile", "customers", "render",
                                           "portfolio", "send", "refresh_stale", "review",
                                           "approval", "send_approved", "check"}
    tenant_check = run_airflow(env, "tasks", "list", "polylens_tenant_check")
    assert set(tenant_check.stdout.split()) >= {"tenants", "notify"}
    upload = run_airflow(env, "tasks", "list", "polylens_partner_upload")
    assert set(upload.stdout.split()) >= {"wait_for_upload", "take_uploads", "refresh",
                                          "notify_rejections", "review", "approval",
                                          "send_approved"}
    shape = subprocess.run([sys.executable, "-c", (
        "import json; from airflow.dag_processing.dagbag import DagBag; bag = DagBag(); "
        "print(json.dumps({d: {t.task_id: {'pool': t.pool, 'type': type(t).__name__, "
        "'upstream': sorted(t.upstream_task_ids), 'trigger_rule': t.trigger_rule, "
        "'retries': t.retries, 'timeout': getattr(t, 'response_timeout', None) and "
        "t.response_timeout.total_seconds()} for t in bag.get_dag(d).tasks} for d in "
        "('polylens_monthly_reconciliation', 'polylens_partner_upload')}))")],
        env=env, capture_output=True, text=True, check=False)
    assert shape.returncode == 0, shape.stderr[-2000:]
    tasks = json.loads(shape.stdout.strip().splitlines()[-1])
    monthly, upload = tasks["polylens_monthly_reconciliation"], tasks["polylens_partner_upload"]
    # Only writers take the one-slot DuckDB pool: the renders read a published copy.
    assert monthly["render"]["pool"] == monthly["portfolio"]["pool"] == "default_pool"
    assert {monthly[t]["pool"] for t in ("take_inbox", "pull_lens", "reconcile", "send",
                                         "review", "send_approved")} == {"polyrecon_duckdb"}
    # The review gate, the same in both DAGs: `review` decides whether a person is asked; the
    # approval waits holding no slot (awaiting_input), asked once (no retries), for a while.
    for dag, before, wait in ((monthly, "refresh_stale", 3 * 86400), (upload, "refresh", 86400)):
        assert before in dag["review"]["upstream"]
        assert dag["review"]["type"] == "_ShortCircuitDecoratedOperator"
        assert dag["approval"] == {"pool": "default_pool", "type": "ApprovalOperator",
                                   "upstream": ["review"], "trigger_rule": "all_success",
                                   "retries": 0, "timeout": wait}
        assert dag["send_approved"]["upstream"] == ["approval", "review"]
    # Skipped (review off) or rejected, the run still ends with its check.
    assert "send_approved" in monthly["check"]["upstream"]
    assert monthly["check"]["trigger_rule"] == "none_failed"


def demo_months(tmp_path_factory) -> tuple[Path, str]:
    """A demo workspace whose twelve months before last month were reconciled (not published),
    made once per session (copy it), and last month: the one a DAG run here takes. Not this
    month: nothing is sent for a month that is not over (a preview)."""
    from pipelines.core.config import load_config
    from pipelines.core.months import Month
    from pipelines.core.workspace import Workspace
    from pipelines.demo.build import build_demo_workspace
    from pipelines.jobs.monthly import run_month

    month = Month.of(datetime.now(UTC).date()).plus(-1)

    def build(root: Path) -> None:
        demo = build_demo_workspace(root, str(month.plus(-1)))
        config = load_config(Workspace.resolve(root))
        for earlier in demo.months:
            run_month(config, Month.parse(earlier), publish=False)
    return build_once(tmp_path_factory, f"dag-demo-{month}", build), str(month)


def configure(root: Path, smtp_port: int, fake: FakeLens | None = None, **settings) -> None:
    """partner.yaml's `smtp` on loopback (`smtp_port`), `settings` beside it; with `fake` the
    first customer's Lens tenant in that fake Lens API, pulled for last month any day of this
    one (`pull_window_days`)."""
    from pipelines.core.workspace import Workspace

    workspace = Workspace.resolve(root)
    partner = yaml.safe_load(workspace.partner_file.read_text())
    partner["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "starttls": False,
                       "from": "reports@nordlicht.example"}
    partner.update(settings)
    if fake:
        partner["lens"] = {"token_url": fake.token_url, "graphql_url": fake.graphql_url,
                           "page_size": 200, "pull_window_days": 31}
        contracts = yaml.safe_load(workspace.contracts_file.read_text())
        contracts["customers"][0]["lens_tenant_id"] = "t-demo"
        write_yaml(workspace.contracts_file, contracts)
    write_yaml(workspace.partner_file, partner)


def test_monthly_dag_equals_the_command_line(airflow_env, tmp_path, tmp_path_factory,
                                            monkeypatch):
    from pipelines.core.workspace import Workspace

    built, month = demo_months(tmp_path_factory)
    server = Server()
    server.start()
    try:
        with FakeLens({"t-demo": 700}) as fake:
            configure(copy_tree(built, tmp_path / "dag"), server.port, fake)
            shutil.copytree(tmp_path / "dag", tmp_path / "cli")
            # The DAG's e-mail must go through the connection smtp_default: the workspace's
            # own smtp setting points nowhere.
            partner_file = tmp_path / "dag" / "config" / "partner.yaml"
            partner = yaml.safe_load(partner_file.read_text())
            partner["smtp"]["port"] = Server().port
            write_yaml(partner_file, partner)
            timings = tmp_path / "timings.jsonl"
            env = {**airflow_env, "POLYRECON_HOME": str(tmp_path / "dag"),
                   "POLYRECON_TIMINGS": str(timings),
                   "AIRFLOW_CONN_POLYLENS_API": json.dumps({
                       "conn_type": "http", "login": fake.client_id,
                       "password": fake.client_secret}),
                   "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                       "conn_type": "smtp", "host": "127.0.0.1", "port": server.port,
                       "extra": {"disable_tls": True,
                                 "from_email": "reports@nordlicht.example"}})}
            done = run_airflow(env, "dags", "test", "polylens_monthly_reconciliation", "--conf",
                            json.dumps({"month": month}))
            assert "state=success" in done.stdout + done.stderr, done.stderr[-3000:]
            # Review off: no approval was asked, the run sent at once.
            assert task_states(env, "polylens_monthly_reconciliation", "review", "approval",
                               "send_approved", "check") == \
                {"review": "success", "approval": "skipped", "send_approved": "skipped",
                 "check": "success"}
            by_dag = sorted(m["Subject"] for _, m in server.inbox.messages)
            server.inbox.messages.clear()
            # The command line's run, in this process: its output is compared, not its process.
            monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
            monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
            assert cli(Workspace.resolve(tmp_path / "cli"), "run", "--month", month) == 0
            by_cli = sorted(m["Subject"] for _, m in server.inbox.messages)
    finally:
        server.stop()
    dag_reports, cli_reports = (tmp_path / side / "reports" / month for side in ("dag", "cli"))
    for name in ("reconciliation.csv", "rma.csv"):
        assert (dag_reports / name).read_bytes() == (cli_reports / name).read_bytes()
    assert sorted(p.name for p in dag_reports.iterdir()) == \
        sorted(p.name for p in cli_reports.iterdir())
    pulled = {line.split(",")[2]: line.split(",")[4] for line in
              (dag_reports / "reconciliation.csv").read_text().splitlines()
              if line.startswith("alpenblick-versicherung,")}
    expected = expected_counts(700)
    assert (pulled["video"], pulled["voice"]) == (str(expected["video"]), str(expected["voice"]))
    assert by_dag == by_cli
    assert by_dag
    # The run computed its month once, in `reconcile`; every customer's render and the
    # portfolio read the stored result.
    tasks = [json.loads(line) for line in timings.read_text().splitlines()]
    computed = [t["task"] for t in tasks for _ in range(t["stages"].get("reconcile", [0, 0])[1])]
    assert computed == ["reconcile"]
    renders = [t for t in tasks if t["task"] == "render"]
    customers = {line.split(",")[0] for line in
                 (dag_reports / "reconciliation.csv").read_text().splitlines()[1:]}
    assert len(renders) == len(customers) > 1
    assert all(t["stages"]["render"][1] == 1 for t in renders)


def test_upload_dag_takes_a_file_and_quarantines_a_bad_one(airflow_env, tmp_path):
    from pipelines.core.workspace import Workspace
    from pipelines.demo.build import build_demo_workspace

    build_demo_workspace(tmp_path, "2026-10")
    workspace = Workspace.resolve(tmp_path)
    for path in workspace.inbox.rglob("*.*"):  # start from an empty drop folder
        path.unlink()
    folder = workspace.inbox / "lakeshore-health"
    (folder / "upload-2026-10.csv").write_text("serial_number,device_model\n"
                                               "U1,Poly Studio X30\nU2,Poly Studio X30\n")
    (folder / "broken-2026-10.csv").write_text("just some notes\n")
    env = {**airflow_env, "POLYRECON_HOME": str(tmp_path)}
    done = run_airflow(env, "dags", "test", "polylens_partner_upload")
    assert "state=success" in done.stdout + done.stderr, done.stderr[-3000:]
    assert task_states(env, "polylens_partner_upload", "approval", "send_approved") == \
        {"approval": "skipped", "send_approved": "skipped"}  # review off
    assert (workspace.archive / "lakeshore-health/2026-10/upload-2026-10.csv").exists()
    assert (workspace.quarantine / "lakeshore-health/broken-2026-10.csv.reason.txt").exists()
    rows = (workspace.home / "reports/2026-10/reconciliation.csv").read_text()
    assert "lakeshore-health,2026-10,video,OK,2," in rows
    assert (workspace.home / "reports/2026-10/lakeshore-health.pdf").exists()
    [notice] = workspace.outbox.rglob("file_rejected-lakeshore-health-*.eml")
    assert "broken-2026-10.csv" in notice.read_text()


def test_the_lens_tenants_are_checked_before_run_day_and_before_the_pulls(airflow_env, tmp_path):
    """The tenant check DAG tells the partner of a grant never accepted and a tenant nobody
    mapped; the monthly DAG's `tenants` task names the same before its pulls, Ghost is not
    pulled, the others are (Own with its own credential), and no secret is in any file or log."""
    from pipelines.core.months import Month
    from pipelines.jobs.tenants import notice_month

    today = datetime.now(UTC).date()
    month = Month.of(today).plus(-1)
    server = Server()
    server.start()
    try:
        with partner_lens() as (fake, credentials):
            workspace = partner_workspace(tmp_path, fake, term=(
                str(month.first_day), str(month.plus(11).last_day)), pull_window_days=31)
            env = {**airflow_env, "POLYRECON_HOME": str(workspace.home),
                   "AIRFLOW_CONN_POLYLENS_API": json.dumps({
                       "conn_type": "generic", "login": fake.client_id,
                       "password": fake.client_secret}),
                   "AIRFLOW_CONN_OWN_LENS": json.dumps({
                       "conn_type": "generic", "login": OWN_CLIENT,
                       "password": credentials["LENS_OWN_LENS_CLIENT_SECRET"]}),
                   "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                       "conn_type": "smtp", "host": "127.0.0.1", "port": server.port,
                       "extra": {"disable_tls": True, "from_email": "ops@nordlicht.example"}})}
            checked = run_airflow(env, "dags", "test", "polylens_tenant_check")
            # (the e-mail package folds a long subject after "Subject:")
            notices = sorted((m["Subject"].strip(), tuple(to))
                             for to, m in server.inbox.messages)
            server.inbox.messages.clear()
            done = run_airflow(env, "dags", "test", "polylens_monthly_reconciliation", "--conf",
                               json.dumps({"month": str(month)}))
            secrets = fake.all_secrets()
            clients = set(fake.graphql_clients)
    finally:
        server.stop()
    assert "state=success" in checked.stdout + checked.stderr, checked.stderr[-3000:]
    told = notice_month(3, today)
    assert notices == [
        (f"[Nordlicht] Poly Lens tenant without a customer: Extra Labs ({told})",
         ("ops@partner.example",)),
        (f"[Nordlicht] Poly Lens: no access to the tenant of Ghost GmbH ({told})",
         ("ghost-desk@partner.example",))]

    # Ghost's pull fails the run at its end; its check named it first, and the others went on.
    assert "state=failed" in done.stdout + done.stderr, done.stderr[-3000:]
    assert task_states(env, "polylens_monthly_reconciliation", "tenants", "reconcile",
                       "check") == {"tenants": "success", "reconcile": "success",
                                    "check": "failed"}
    check = xcom(env, "polylens_monthly_reconciliation", "tenants")
    assert check["checked"] is True
    assert [line.split(":")[0] for line in check["problems"]] == [
        "the customer ghost (tenant t-ghost)", "the tenant t-extra (Extra Labs) is not mapped"]
    assert "the partner's credential cannot see the tenant t-ghost" in check["problems"][0]
    assert set(check["blocked"]) == {"ghost"}
    pulls = {p["customer_id"]: p for p in xcom(env, "polylens_monthly_reconciliation",
                                               "pull_lens")}
    assert {c: p["outcome"] for c, p in pulls.items()} == {
        "acme": "loaded", "bolt": "loaded", "ghost": "failed", "own": "loaded"}
    assert pulls["ghost"]["detail"].startswith("not pulled, nothing stored: the partner's "
                                               "credential cannot see the tenant t-ghost")
    assert clients == {fake.client_id, OWN_CLIENT}  # Own came through its own credential
    rows = (workspace.home / "reports" / str(month) / "reconciliation.csv").read_text()
    assert f"own,{month},video,OK,{expected_counts(12)['video']}," in rows
    # `dags test` writes the tasks' logs to its output: the check names each problem there.
    logged = done.stdout + done.stderr
    assert "Lens tenants: the customer ghost (tenant t-ghost): " in logged
    assert "Lens tenants: the tenant t-extra (Extra Labs) is not mapped" in logged
    written = [p for root in (workspace.home, Path(env["AIRFLOW_HOME"]))
               for p in root.rglob("*") if p.is_file()]
    for secret in map(str.encode, secrets):
        for said in (checked, done):
            assert secret.decode() not in said.stdout + said.stderr
        for path in written:
            assert secret not in path.read_bytes(), path


def test_dags_pass_ruffs_airflow_3_rules():
    done = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check", "dags/",
                           "--select", "AIR3"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout


def xcom(env: dict, dag_id: str, task_id: str):
    """What the task returned (a mapped task: its instances' results, by map index), from
    Airflow's metadata DB."""
    path = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as con:
        rows = con.execute("SELECT map_index, value FROM xcom WHERE dag_id = ? AND task_id = ? "
                           "AND key = 'return_value' ORDER BY map_index",
                           (dag_id, task_id)).fetchall()
    values = [json.loads(value) for _, value in rows]
    return values if rows and rows[0][0] >= 0 else values[0]


def task_states(env: dict, dag_id: str, *task_ids: str) -> dict[str, str]:
    """The states of the DAG's (unmapped) tasks in Airflow's metadata DB (SQLite, read only)."""
    path = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as con:
        rows = con.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND "
                           "map_index = -1", (dag_id,)).fetchall()
    return {task_id: state for task_id, state in rows if task_id in task_ids}
