"""E-mail through a real SMTP server (aiosmtpd) on loopback: who gets what, exactly once,
through an outage, with one bad recipient, and never another customer's data."""
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml
from builders import build_once, cli, copy_tree, write_yaml
from fake_smtp import Inbox, Server

from pipelines.core.config import load_config
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.demo.build import build_demo_workspace
from pipelines.jobs.monthly import run_month

MONTH = "2026-10"
# Its module fixture `sent` is made once: every test of this module runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("mail")


@pytest.fixture
def smtp():
    server = Server()
    server.start()
    yield server.inbox, server
    server.stop()


def _replay(root: Path) -> None:
    """The demo workspace with its first eleven months taken in and reconciled (nothing
    published, nothing sent): where each test's run of the last month starts."""
    demo = build_demo_workspace(root, MONTH)
    assert demo.months[-1] == MONTH
    config = load_config(Workspace.resolve(root))
    for month in demo.months[:-1]:
        run_month(config, Month.parse(month), publish=False)


@pytest.fixture(scope="session")
def replayed(tmp_path_factory) -> Path:
    """The replayed demo (`_replay`), made once per session: copy it."""
    return build_once(tmp_path_factory, "mail-replayed-demo", _replay)


@pytest.fixture
def demo(replayed, tmp_path) -> Workspace:
    """A copy of the replayed demo, the test's own."""
    return Workspace.resolve(copy_tree(replayed, tmp_path / "demo"))


@pytest.fixture(scope="module")
def sent(replayed, tmp_path_factory) -> tuple[Workspace, list]:
    """The last month run once with an SMTP server, on a copy of the replayed demo: the
    workspace and what the server received (made once per module, read by the tests that only
    look at that run's messages; never changed by a test)."""
    server = Server()
    server.start()
    try:
        workspace = _demo_with_smtp(Workspace.resolve(copy_tree(
            replayed, tmp_path_factory.mktemp("sent") / "demo")), server.port)
        assert cli(workspace, "run", "--month", MONTH) == 0
    finally:
        server.stop()
    return workspace, server.inbox.messages


def _demo_with_smtp(workspace: Workspace, port: int, bouncing_csm: str | None = None
                    ) -> Workspace:
    partner = yaml.safe_load(workspace.partner_file.read_text())
    partner["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False,
                       "from": "reports@nordlicht.example"}
    write_yaml(workspace.partner_file, partner)
    if bouncing_csm:
        text = workspace.contracts_file.read_text()
        workspace.contracts_file.write_text(text.replace(bouncing_csm, Inbox.bouncing))
    return workspace


def _customers(workspace) -> dict:
    data = yaml.safe_load(workspace.contracts_file.read_text())
    return {c["id"]: c for c in data["customers"]}


def _text(message) -> str:
    return "\n".join(part.get_content() for part in message.walk()
                     if part.get_content_type() in ("text/plain", "text/html"))


def test_who_receives_what_exactly_once(sent, smtp, tmp_path):
    workspace, messages = sent
    customers = _customers(workspace)
    # The demo partner writes German; its UK and US customers read English.
    reports = {m["Subject"]: (to, m) for to, m in messages
               if "Enterprise report" in m["Subject"] or "Enterprise Bericht" in m["Subject"]}
    assert len(reports) == len(customers)
    for customer in customers.values():
        to, message = next(v for k, v in reports.items() if k.endswith(customer["name"]))
        assert message["To"] == customer["csm"]["email"]
        assert message["Cc"] == ", ".join(customer["partner_contacts"])
        assert sorted(to) == sorted([customer["csm"]["email"], *customer["partner_contacts"]])
        pdf, *pack = list(message.iter_attachments())
        assert pdf.get_filename() == f"{customer['id']}.pdf"
        assert [p.get_filename() for p in pack] == [f"{customer['id']}-devices.xlsx",
                                                    f"{customer['id']}-devices.csv"]
        assert pdf.get_content().startswith(b"%PDF")
    subjects = [m["Subject"] for _, m in messages]
    assert [s for s in subjects if "True-Up" in s] == [
        ("[Nordlicht Kommunikation GmbH] True-Up Rheintal Präzisionstechnik AG Nur Sprache "
         "2026-10: +6 Geräte, 22,00\xa0CHF")]  # CLDR: a no-break space before the currency
    assert sorted(s.split(" RMA ")[1].split(":")[0] for s in subjects if " RMA " in s) == [
        "Watch Thames Valley Legal LLP 2026",
        "ÜBERSCHRITTEN Hanseatische Logistik GmbH & Co. KG 2026"]
    # A re-run sends nothing twice; --resend does, on purpose (on a copy of the workspace as
    # that run left it, to a server of the test's own).
    inbox, controller = smtp
    again = _demo_with_smtp(Workspace.resolve(copy_tree(workspace.home, tmp_path / "again")),
                            controller.port)
    assert cli(again, "run", "--month", MONTH) == 0
    assert inbox.messages == []
    assert cli(again, "run", "--month", MONTH, "--resend") == 0
    assert len(inbox.messages) == len(messages)


def test_a_csm_with_lens_access_gets_the_report_without_the_evidence_pack(demo, smtp):
    inbox, controller = smtp
    workspace = _demo_with_smtp(demo, controller.port)
    contracts = yaml.safe_load(workspace.contracts_file.read_text())
    reader = contracts["customers"][0]
    reader["csm_has_lens_access"] = True
    write_yaml(workspace.contracts_file, contracts)
    assert cli(workspace, "run", "--month", MONTH) == 0
    attached = {m["To"]: [p.get_filename() for p in m.iter_attachments()]
                for _, m in inbox.messages if m["To"] == reader["csm"]["email"]
                and ("Enterprise report" in m["Subject"] or "Enterprise Bericht" in m["Subject"])}
    assert attached == {reader["csm"]["email"]: [f"{reader['id']}.pdf"]}


def test_each_message_holds_only_its_own_customer(sent):
    workspace, messages = sent
    customers = _customers(workspace)
    for to, message in messages:
        text = message["Subject"] + _text(message)
        mine = [cid for cid, c in customers.items() if c["name"] in text]
        assert len(mine) == 1, message["Subject"]
        own = customers[mine[0]]
        allowed = {own["csm"]["email"], *own["partner_contacts"]}
        assert set(to) <= allowed
        for other_id, other in customers.items():
            if other_id != mine[0]:
                assert other_id not in text
                assert other["csm"]["email"] not in text


def test_an_outage_loses_nothing_and_sends_each_message_once(demo, smtp, capsys):
    inbox, controller = smtp
    workspace = _demo_with_smtp(demo, controller.port)
    controller.stop()
    assert cli(workspace, "run", "--month", MONTH) == 1
    out = capsys.readouterr().out
    assert "0 sent" in out
    assert "still queued" in out
    assert inbox.messages == []
    assert cli(workspace, "status") == 0
    assert "queued 2026-10 report" in capsys.readouterr().out
    controller.start()
    assert cli(workspace, "run", "--month", MONTH) == 0
    subjects = [m["Subject"] for _, m in inbox.messages]
    assert len(subjects) == len(set(subjects)) >= 10
    assert cli(workspace, "run", "--month", MONTH) == 0
    assert len(inbox.messages) == len(subjects)


def test_a_refused_recipient_does_not_block_the_others(demo, smtp, capsys):
    inbox, controller = smtp
    workspace = _demo_with_smtp(demo, controller.port,
                                bouncing_csm="marta.keller@example.com")
    assert cli(workspace, "run", "--month", MONTH) == 0
    report = next(m for _, m in inbox.messages
                  if m["Subject"].endswith("Bericht 2026-10: Rheintal Präzisionstechnik AG"))
    assert report["To"] == Inbox.bouncing
    recipients = next(to for to, m in inbox.messages if m is report)
    # the partner contacts got it
    assert Inbox.bouncing not in recipients
    assert recipients
    assert len(inbox.messages) >= 10  # every other message went out too


def test_without_smtp_messages_are_eml_files_in_the_outbox(demo):
    workspace = demo  # the months before MONTH replayed, not published
    config = load_config(workspace)
    run_month(config, Month.parse(MONTH), publish=True)
    files = sorted((workspace.outbox / MONTH).glob("*.eml"))
    assert len(files) >= 10
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["Subject"]
    assert message["To"]
    run_month(config, Month.parse(MONTH))
    assert sorted((workspace.outbox / MONTH).glob("*.eml")) == files


def test_a_5xx_rejection_is_recorded_with_the_answer_and_shown(tmp_path, smtp, capsys):
    from builders import contract, devices, drop, export_text, make_workspace

    inbox, server = smtp
    workspace = make_workspace(tmp_path, [contract(
        "acme", csm={"name": "Nobody", "email": Inbox.bouncing}, partner_contacts=[])])
    write_yaml(workspace.partner_file, {"smtp": {"host": "127.0.0.1", "port": server.port,
                                                 "starttls": False,
                                                 "from": "reports@partner.example"}})
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 3)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert inbox.messages == []
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    out = capsys.readouterr().out
    assert "rejected 2026-03 report acme" in out
    assert "550 5.1.1 no such user here" in out
    assert cli(workspace, "run", "--month", "2026-03") == 0  # not retried: it was final
    assert inbox.messages == []
