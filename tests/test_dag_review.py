"""The review gate under real Airflow: with partner.yaml `delivery: {review: required}` a run of
the monthly DAG (`airflow dags test`) stops at its `approval` with nothing sent to a CSM, and a
person answers it the way Airflow 3.3 takes an answer: the REST API of an `airflow api-server`
sharing the metadata DB (what the UI's Required actions page calls; no `airflow` command answers
one). Approve: the run sends exactly what `python -m pipelines approve --month M` sends from a
copy of the workspace; Reject: nothing."""
from __future__ import annotations

import io
import json
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from builders import AIRFLOW, copy_tree, end_process_group
from fake_smtp import Server, free_port
from test_dags import configure, demo_months, task_states

from pipelines.cli import main

DAG = "polylens_monthly_reconciliation"
REVIEWER = ("reviewer", "a-reviewers-password")
WAIT = 420  # seconds: a cap on each wait (a slow machine), never a measure


def test_approving_the_review_sends_what_the_command_line_approves(
        airflow_env, tmp_path, tmp_path_factory):
    built, month = demo_months(tmp_path_factory)
    home = copy_tree(built, tmp_path / "dag")
    # The DAG sends through smtp_default: the workspace's own `smtp` points nowhere.
    configure(home, free_port(), delivery={"review": "required"})
    dag_mail, cli_mail = Server(), Server()
    dag_mail.start()
    cli_mail.start()
    try:
        with _airflow(airflow_env, tmp_path, home, dag_mail.port, month) as airflow:
            airflow.wait_for_approval()
            before = list(dag_mail.inbox.messages)
            assert not _to_csms(home, before)  # operations notices only, if any
            cli = copy_tree(home, tmp_path / "cli")  # the workspace as the approval found it
            configure(cli, cli_mail.port, delivery={"review": "required"})
            detail = airflow.pending()
            assert month in detail["subject"]
            # The body shows what `review` shows of the DAG's workspace (its first line counts
            # the months the run touched, which may be more than this one).
            shown = _pipelines("review", "--month", month, "--home", str(cli))
            shown = shown.split("\n", 1)[1].replace(str(cli), str(home))
            assert _lines(shown) <= _lines(detail["body"])
            airflow.answer(detail, "Approve")
            airflow.wait_for_end()
        _pipelines("approve", "--month", month, "--home", str(cli))
    finally:
        dag_mail.stop()
        cli_mail.stop()
    by_dag = _sent(dag_mail.inbox.messages[len(before):])
    by_cli = _sent(cli_mail.inbox.messages)
    assert by_dag == by_cli
    assert _to_csms(home, dag_mail.inbox.messages)
    # Sent once: nothing waits any more.
    assert _waiting(home, month) == 0
    assert airflow.state("send_approved") == "success"


def test_rejecting_the_review_sends_nothing(airflow_env, tmp_path, tmp_path_factory):
    built, month = demo_months(tmp_path_factory)
    home = copy_tree(built, tmp_path / "dag")
    configure(home, free_port(), delivery={"review": "required"})
    customer = yaml.safe_load((home / "config/contracts.yaml").read_text())["customers"][0]["id"]
    mail = Server()
    mail.start()
    try:
        with _airflow(airflow_env, tmp_path, home, mail.port, month, customer) as airflow:
            airflow.wait_for_approval()
            waiting = _waiting(home, month, customer)
            assert waiting
            airflow.answer(airflow.pending(), "Reject")
            airflow.wait_for_end()
    finally:
        mail.stop()
    assert not _to_csms(home, mail.inbox.messages)
    assert airflow.state("send_approved") == "skipped"
    assert airflow.state("check") == "success"
    assert _waiting(home, month, customer) == waiting  # they keep waiting, unsent


def test_an_approval_sends_only_what_was_shown(tmp_path, tmp_path_factory):
    """Without Airflow: `send_approved` sends nothing when what waits is no longer what the
    review showed (another run composed the month again while the approval waited)."""
    from pipelines.core.config import load_config
    from pipelines.core.errors import ConfigError
    from pipelines.core.months import Month
    from pipelines.core.workspace import Workspace
    from pipelines.jobs.dag_support import review_request, send_approved_messages
    from pipelines.jobs.monthly import run_month

    built, month = demo_months(tmp_path_factory)
    home = copy_tree(built, tmp_path / "ws")
    mail = Server()
    mail.start()
    try:
        configure(home, mail.port, delivery={"review": "required"})
        config = load_config(Workspace.resolve(home))
        run_month(config, Month.parse(month))
        assert not _to_csms(home, mail.inbox.messages)
        request = review_request(config, [month], None, ["a problem of the run"])
        assert request["months"] == [month]
        assert request["body"].startswith("**Problem:** a problem of the run")
        with pytest.raises(ConfigError, match="changed after it was shown"):
            send_approved_messages(config, {**request, "waiting": "0" * 64}, {})
        assert not _to_csms(home, mail.inbox.messages)
        done = send_approved_messages(config, request,
                                      {"responded_by_user": {"id": "r", "name": "reviewer"}})
    finally:
        mail.stop()
    assert done["approved_by"] == "reviewer"
    assert done["sent"] == len(_to_csms(home, mail.inbox.messages)) > 0
    assert review_request(config, [month], None) is None  # nothing waits: no approval asked


class _Airflow:
    """A `dags test` run of the monthly DAG and an API server beside it, on one metadata DB."""

    def __init__(self, env: dict, folder: Path, run: subprocess.Popen, api: subprocess.Popen,
                 api_url: str):
        self.env, self.folder, self.run, self.api, self.api_url = env, folder, run, api, api_url
        self.token = None

    def _log(self, name: str) -> str:
        return (self.folder / name).read_text(errors="replace")[-4000:]

    def _until(self, done, what: str, running: bool = True) -> None:
        """Polls `done` each second while the run (with `running`) and the API server live."""
        deadline = time.monotonic() + WAIT
        while not done():
            assert not running or self.run.poll() is None, \
                f"the run ended before {what}:\n{self._log('run.log')}"
            assert self.api.poll() is None, f"the API server stopped:\n{self._log('api.log')}"
            assert time.monotonic() < deadline, f"no {what} in {WAIT} s:\n{self._log('run.log')}"
            time.sleep(1)

    def state(self, task_id: str) -> str | None:
        return task_states(self.env, DAG, task_id).get(task_id)

    def wait_for_approval(self) -> None:
        self._until(lambda: self.state("approval") == "awaiting_input", "approval waiting")
        self._until(self._api_up, "API server")

    def _api_up(self) -> bool:
        """Logged in as the reviewer (the simple auth manager's token), once it listens."""
        try:
            self.token = self._call("POST", "/auth/token", {"username": REVIEWER[0],
                                                            "password": REVIEWER[1]}
                                    )["access_token"]
        except urllib.error.HTTPError:
            raise
        except OSError:  # not listening yet
            return False
        return True

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.api_url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def pending(self) -> dict:
        """The one answer the DAG waits for, as the Required actions page lists it."""
        [detail] = self._call("GET", "/api/v2/dags/~/dagRuns/~/hitlDetails"
                                     "?response_received=false")["hitl_details"]
        return detail

    def answer(self, detail: dict, option: str) -> None:
        ti = detail["task_instance"]
        done = self._call("PATCH", f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/"
                                   f"taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails",
                          {"chosen_options": [option], "params_input": {}})
        assert done["chosen_options"] == [option]
        assert done["responded_by"]["name"] == REVIEWER[0]

    def wait_for_end(self) -> None:
        self._until(lambda: self.run.poll() is not None, "the run's end", running=False)
        assert "state=success" in self._log("run.log"), self._log("run.log")


@contextmanager
def _airflow(airflow_env: dict, folder: Path, home: Path, smtp_port: int, month: str,
             customer: str | None = None):
    """`airflow dags test` of the month (sending through smtp_default on `smtp_port`) and an
    `airflow api-server` on a loopback port with one reviewer, both stopped on the way out."""
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({REVIEWER[0]: REVIEWER[1]}))
    port = free_port()
    env = {**airflow_env, "POLYRECON_HOME": str(home),
           "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
               "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
               "extra": {"disable_tls": True, "from_email": "reports@nordlicht.example"}}),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{REVIEWER[0]}:user",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    processes = []
    try:
        for name, command in (
                ("api.log", ["api-server", "--apps", "core", "--workers", "1",
                             "--host", "127.0.0.1", "--port", str(port)]),
                ("run.log", ["dags", "test", DAG, "--conf",
                             json.dumps({"month": month, "customer": customer})])):
            with (folder / name).open("w") as log:
                processes.append(subprocess.Popen([AIRFLOW, *command], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        yield _Airflow(env, folder, processes[1], processes[0], f"http://127.0.0.1:{port}")
    finally:
        for process in processes:
            if process.poll() is None:
                end_process_group(process)


def _pipelines(*args: str) -> str:
    """What `python -m pipelines *args` prints, run in this process (the command's answer is
    compared, not its process)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    assert code == 0, err.getvalue()[-3000:]
    return out.getvalue()


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def _sent(messages) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((m["Subject"], tuple(sorted(to))) for to, m in messages)


def _to_csms(home: Path, messages) -> list[str]:
    """The subjects of the messages addressed to a customer's CSM."""
    contracts = yaml.safe_load((home / "config/contracts.yaml").read_text())
    csms = {c["csm"]["email"] for c in contracts["customers"]}
    return [m["Subject"] for to, m in messages if csms & set(to)]


def _waiting(home: Path, month: str, customer: str | None = None) -> int:
    """How many messages wait for a review of `month` (read only)."""
    from pipelines.core.config import load_config
    from pipelines.core.months import Month
    from pipelines.core.workspace import Workspace
    from pipelines.jobs.review import waiting_review

    review = waiting_review(load_config(Workspace.resolve(home)), [Month.parse(month)],
                            customer)
    return len(review.messages)
