"""Lens API and SMTP faults in one run: the run says what failed (exit 1), keeps what cannot go
out queued, and the next run ends as an undisturbed run with every e-mail delivered once; no
secret (Lens client secret, tokens, SMTP password) is in any file or any output."""
import pickle
from datetime import date
from pathlib import Path

import pytest
from builders import (
    build_once,
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    write_yaml,
)
from fake_lens import FakeLens, Faults
from fake_smtp import DrippingServer, Server
from harness import polyrecon_here

from pipelines.core.months import Month

SMTP_USER, SMTP_PASSWORD = "polyrecon", "smtp-pass-6c1f0e2d9b"
ALL = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0},
       "video": {"ordered_devices": 100, "unit_price_per_year": 180.0},
       "voice": {"ordered_devices": 100, "unit_price_per_year": 24.0}}


def _workspace(root, fake: FakeLens, port: int, month: str | None = None):
    workspace = make_workspace(root, [
        contract("acme", categories=ALL, lens_tenant_id="t-acme"),
        contract("bravo", categories=ALL)])
    write_yaml(workspace.partner_file, {
        # The month before this one, pulled any day of this month: the month in progress
        # would send nothing but the file-rejected notice (a preview).
        "lens": {"token_url": fake.token_url, "graphql_url": fake.graphql_url,
                 "page_size": 100, "pull_window_days": 31},
        "smtp": {"host": "127.0.0.1", "port": port, "starttls": False,
                 "from": "reports@partner.example"}})
    month = month or str(Month.of(date.today()).plus(-1))
    drop(workspace, "bravo", f"lens-{month}.csv", export_text(devices("Poly Studio X30", 104)))
    drop(workspace, "bravo", f"notes-{month}.csv", "just,notes\n")  # a rejection notice
    return workspace, month


def _results(workspace, month):
    folder = workspace.home / "reports" / month
    return {name: (folder / name).read_bytes() for name in ("reconciliation.csv", "rma.csv")}


CASES = {
    "transient": Faults(token_503=1, bad_gateway_502=2, drop_connection=1, rate_limit_429=1,
                        retry_after="0.2", at_request=2),
    "permanent": Faults(total_count_offset=5),
}


ENV = {"SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD}
# The runs here are in the test's process (harness.polyrecon_here): the faults are the
# servers', and what the runs print and leave is what is tested.


def _undisturbed(folder: Path) -> None:
    """The run without faults: its result files and the e-mails it delivered, pickled."""
    server = Server(login=(SMTP_USER, SMTP_PASSWORD))
    with FakeLens({"t-acme": 250}) as clean_fake:
        clean, month = _workspace(folder / "clean", clean_fake, server.port)
        env = {**ENV, "LENS_CLIENT_ID": clean_fake.client_id,
               "LENS_CLIENT_SECRET": clean_fake.client_secret}
        server.start()
        try:
            undisturbed = polyrecon_here(clean.home, "run", "--month", month, env=env)
        finally:
            server.stop()
        assert undisturbed.returncode == 0, undisturbed.stderr[-2000:]
    (folder / "undisturbed.pickle").write_bytes(pickle.dumps(
        (month, _results(clean, month), sorted(server.inbox.subjects))))


@pytest.fixture(scope="session")
def undisturbed(tmp_path_factory) -> tuple[str, dict, list]:
    """The month, the result files and the e-mails of the run without faults (the same for
    every case: made once per session)."""
    folder = build_once(tmp_path_factory, "faults-undisturbed", _undisturbed)
    return pickle.loads((folder / "undisturbed.pickle").read_bytes())


@pytest.mark.parametrize("lens_fault", list(CASES))
def test_lens_and_smtp_faults_in_one_run(tmp_path, reliability, lens_fault, undisturbed):
    month, clean_results, expected_mail = undisturbed
    server = Server(login=(SMTP_USER, SMTP_PASSWORD))
    inbox, port = server.inbox, server.port
    with FakeLens({"t-acme": 250}, faults=CASES[lens_fault]) as fake:
        faulty, _ = _workspace(tmp_path / "faulty", fake, port, month)
        env = {**ENV, "LENS_CLIENT_ID": fake.client_id,
               "LENS_CLIENT_SECRET": fake.client_secret}
        first = polyrecon_here(faulty.home, "run", "--month", month, env=env)  # SMTP is down
        assert first.returncode == 1, first.stderr[-2000:]
        assert "still queued" in first.stdout
        assert "Traceback" not in first.stderr
        assert inbox.subjects == []
        if lens_fault == "permanent":
            assert "1 Lens API pull failed" in first.stderr
            fake.faults = Faults()  # Lens is fixed
        server.start()
        try:
            second = polyrecon_here(faulty.home, "run", "--month", month, env=env)
        finally:
            server.stop()
        assert second.returncode == 0, second.stderr[-2000:]
        secrets = [fake.client_secret, *fake.issued_tokens, SMTP_PASSWORD]
    assert _results(faulty, month) == clean_results
    if lens_fault == "transient":
        assert sorted(inbox.subjects) == expected_mail  # each message once, none lost
        assert any("Poly+ Enterprise report" in s for s, _ in expected_mail)  # not only notices
    else:  # the failed pull's month had no Lens data at the first run: its report differs
        assert sorted(s for s, _ in inbox.subjects if "File rejected" in s) == \
            sorted(s for s, _ in expected_mail if "File rejected" in s)
    outputs = first.stdout + first.stderr + second.stdout + second.stderr
    for secret in secrets:
        assert secret not in outputs
        for path in faulty.home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    reliability(f"Lens API {lens_fault} faults ("
                + ("503 token, 502, dropped connection, 429" if lens_fault == "transient"
                   else "totalCount disagrees: incomplete pull")
                + ") and the SMTP server down, in one run", "Lens pull + e-mail",
                "exit 1, messages kept queued; the next run delivered each once; no secret "
                "in any file or output")


def test_a_server_that_answers_quit_with_421_is_no_failure(tmp_path, reliability):
    """Issue 29, 10: session time-outs end many SMTP sessions with `421` to QUIT; by then each
    message is accepted and recorded, so the run succeeded and the next sends nothing again."""
    server = Server(quit_answer="421 4.4.2 mail.partner.example closing: session timed out")
    month = str(Month.of(date.today()).plus(-1))
    workspace = make_workspace(tmp_path, [contract("acme", categories=ALL)])
    write_yaml(workspace.partner_file, {"smtp": {"host": "127.0.0.1", "port": server.port,
                                                 "starttls": False,
                                                 "from": "reports@partner.example"}})
    drop(workspace, "acme", f"lens-{month}.csv", export_text(devices("Poly Studio X30", 110)))
    server.start()
    try:
        first = polyrecon_here(workspace.home, "run", "--month", month)
        again = polyrecon_here(workspace.home, "run", "--month", month)
    finally:
        server.stop()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Traceback" not in first.stderr
    assert "E-mail: 2 new, 2 sent, 0 still queued, 0 rejected" in first.stdout  # report, true-up
    assert sorted(s.split("]")[1].split()[0] for s, _ in server.inbox.subjects) == [
        "Poly+", "True-up"]
    assert again.returncode == 0
    assert "E-mail: 0 new, 0 sent" in again.stdout
    assert len(server.inbox.messages) == 2
    reliability("The SMTP server answers QUIT with 421 (session timed out)", "e-mail",
                "exit 0: every message was accepted and recorded before QUIT; nothing is sent "
                "again")


@pytest.mark.parametrize("where", ["greeting", "message"])
def test_a_server_that_answers_a_byte_at_a_time_is_cut_off_at_a_deadline(
        tmp_path, reliability, monkeypatch, capsys, where):
    """Issue 29, 5: a server answering one byte every 20 s held a run (and the workspace lock)
    for ever: smtplib's timeout is per read. Each step has a deadline; past it the messages
    stay queued for the next run. (The deadlines are shortened here: minutes in production.)"""
    from pipelines.delivery import mail

    monkeypatch.setattr(mail, "CONNECT_DEADLINE", 2.0)
    monkeypatch.setattr(mail, "MESSAGE_DEADLINE", 2.0)
    month = str(Month.of(date.today()).plus(-1))
    workspace = make_workspace(tmp_path, [contract("acme", categories=ALL)])
    with DrippingServer(where) as server:
        write_yaml(workspace.partner_file, {"smtp": {"host": "127.0.0.1", "port": server.port,
                                                     "starttls": False,
                                                     "from": "reports@partner.example"}})
        drop(workspace, "acme", f"lens-{month}.csv", export_text(devices("Poly Studio X30", 110)))
        assert cli(workspace, "run", "--month", month) == 1  # finishes: not held for ever
    out = capsys.readouterr().out
    assert "E-mail: 2 new, 0 sent, 2 still queued, 0 rejected" in out
    assert cli(workspace, "status") == 0
    status = capsys.readouterr().out
    said = ("connecting and logging in took longer than 2 s" if where == "greeting"
            else "sending one message took longer than 2 s")
    assert said in status
    reliability(f"The SMTP server answers a byte at a time (from its {where})", "e-mail",
                "cut off at the step's deadline; exit 1, the messages stay queued for the next "
                "run; the workspace lock is not held for ever")
