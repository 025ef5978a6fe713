"""Notices to the partner's operations staff (issue 30): a file dropped into a misspelt customer
folder is asked "did you mean <customer>?"; `ingest` alone sends the notice of what it rejected,
once, through the ledger; `status` lists a quarantined file only while it is still there.

Through the real CLI, with e-mail to the real SMTP server of tests/fake_smtp.py."""
from __future__ import annotations

import shutil

import pytest
from builders import (
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    set_review,
    write_yaml,
)

from pipelines.core.nearest import nearest

VIDEO = {"video": {"ordered_devices": 100, "unit_price_per_year": 180.0}}
OPS = "ops@partner.example"


def _workspace(root, customer_ids: list[str], port: int, language: str = "en"):
    workspace = make_workspace(root, [contract(c, categories=VIDEO) for c in customer_ids])
    write_yaml(workspace.partner_file, {
        "partner": {"name": "Nordlicht", "contact_email": OPS, "language": language},
        "smtp": {"host": "127.0.0.1", "port": port, "starttls": False,
                 "from": "reports@nordlicht.example"}})
    return workspace


def _drop_export(workspace, folder: str) -> None:
    drop(workspace, folder, "lens-2026-11.csv", export_text(devices("Poly Studio X30", 3)))


def _notices(server) -> list:
    return [(to, message) for to, message in server.inbox.messages
            if "File rejected" in message["Subject"] or "abgelehnt" in message["Subject"]]


def _reason(workspace, folder: str) -> str:
    return (workspace.quarantine / folder / "lens-2026-11.csv.reason.txt").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("customer_id", ["acme-gmbh1", "acmegmbh"])
def test_a_folder_one_edit_from_a_customer_id_asks_did_you_mean(tmp_path, smtp_server, capsys,
                                                                customer_id):
    workspace = _workspace(tmp_path, [customer_id, "bolt"], smtp_server.port)
    _drop_export(workspace, "acme-gmbh")
    assert cli(workspace, "ingest") == 0
    out = capsys.readouterr().out
    said = (f"there is no customer 'acme-gmbh' in contracts.yaml; did you mean '{customer_id}'? "
            f"Put the file into inbox/{customer_id}/, or add the contract")
    assert f"quarantined inbox/acme-gmbh/lens-2026-11.csv: {said}" in out
    assert said in _reason(workspace, "acme-gmbh")
    [(to, notice)] = _notices(smtp_server)
    assert to == [OPS]
    assert said in notice.get_body(("plain",)).get_content()
    # Nothing was taken in for the customer it was meant for: the partner moves the file.
    assert (workspace.quarantine / "acme-gmbh" / "lens-2026-11.csv").exists()


def test_the_german_partner_reads_the_question_in_german(tmp_path, smtp_server):
    workspace = _workspace(tmp_path, ["acme-gmbh1"], smtp_server.port, language="de")
    _drop_export(workspace, "acme-gmbh")
    assert cli(workspace, "ingest") == 0
    assert ("in contracts.yaml gibt es keinen Kunden 'acme-gmbh'; meinten Sie 'acme-gmbh1'? "
            "Legen Sie die Datei in inbox/acme-gmbh1/ ab") in _reason(workspace, "acme-gmbh")


@pytest.mark.parametrize(("folder", "customer_ids", "meant"), [
    ("acme-gmbh", ["acme-gmbh1", "bolt"], "acme-gmbh1"),    # one insertion
    ("acme-gmbh", ["acmegmbh"], "acmegmbh"),                # one deletion
    ("acme-gmhb", ["acme-gmbh"], "acme-gmbh"),              # two substitutions
    ("ACME-GmbH", ["acme-gmbh"], "acme-gmbh"),              # case is no edit
    ("acme-gmbh", ["acme-gmbh12", "acme"], "acme-gmbh12"),  # the closest only
    ("acme", ["acme-gmbh"], None),                          # five edits: another name
    ("acme-gmbh", ["acme-gmbh1", "acmegmbh"], None),        # two as close: no guess
])
def test_did_you_mean_names_at_most_the_one_closest_id(folder, customer_ids, meant):
    assert nearest(folder, customer_ids) == meant


def test_a_misspelt_customer_argument_is_asked_did_you_mean_too(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme-gmbh1", categories=VIDEO)])
    assert cli(workspace, "ingest", "--customer", "acme-gmbh") == 2
    assert capsys.readouterr().err.strip() == (
        "--customer: there is no customer 'acme-gmbh' in contracts.yaml; did you mean "
        "'acme-gmbh1'?")


def test_a_folder_far_from_every_customer_id_is_asked_nothing(tmp_path, smtp_server):
    workspace = _workspace(tmp_path, ["acme-gmbh1"], smtp_server.port)
    _drop_export(workspace, "ghost")
    assert cli(workspace, "ingest") == 0
    reason = _reason(workspace, "ghost")
    assert "there is no customer 'ghost' in contracts.yaml; add the contract" in reason
    assert "did you mean" not in reason


def test_ingest_alone_sends_the_notice_once_and_the_run_sends_it_not_again(tmp_path, smtp_server,
                                                                            capsys):
    workspace = _workspace(tmp_path, ["acme-gmbh1"], smtp_server.port)
    _drop_export(workspace, "acme-gmbh")
    drop(workspace, "acme-gmbh1", "notes-2026-11.csv", "Comment,Owner\nhello,me\n")
    assert cli(workspace, "ingest") == 0
    assert "E-mail: 2 new, 2 sent, 0 still queued, 0 rejected" in capsys.readouterr().out
    subjects = sorted(m["Subject"] for _, m in _notices(smtp_server))
    assert subjects == ["[Nordlicht] File rejected for Acme-Gmbh1 GmbH: notes-2026-11.csv",
                        "[Nordlicht] File rejected for no customer: lens-2026-11.csv"]
    # The next ingest, and the month's run, find both notices sent.
    _drop_export(workspace, "acme-gmbh1")
    assert cli(workspace, "ingest") == 0
    assert "E-mail:" not in capsys.readouterr().out
    assert cli(workspace, "run", "--month", "2026-11") == 0
    assert sorted(m["Subject"] for _, m in _notices(smtp_server)) == subjects
    assert any("Enterprise report 2026-11" in m["Subject"] for _, m in smtp_server.inbox.messages)


def test_without_smtp_ingest_files_the_notice_where_the_months_run_would(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme-gmbh1", categories=VIDEO)])
    drop(workspace, "acme-gmbh1", "notes-2026-11.csv", "Comment,Owner\nhello,me\n")
    assert cli(workspace, "ingest", "--month", "2026-11") == 0
    [notice] = workspace.outbox.rglob("file_rejected-*.eml")
    assert notice.parent == workspace.outbox / "2026-11"
    assert cli(workspace, "run", "--month", "2026-11") == 0
    assert list(workspace.outbox.rglob("file_rejected-*.eml")) == [notice]


def test_ingest_sends_the_notice_also_when_review_is_required(tmp_path, smtp_server):
    """Review holds what goes to a CSM; a notice to the partner's own staff never waits."""
    workspace = _workspace(tmp_path, ["acme-gmbh1"], smtp_server.port)
    set_review(workspace, "required")
    _drop_export(workspace, "acme-gmbh")
    assert cli(workspace, "ingest") == 0
    assert len(_notices(smtp_server)) == 1


def test_status_lists_a_quarantined_file_only_while_it_is_still_there(tmp_path, smtp_server,
                                                                       capsys):
    workspace = _workspace(tmp_path, ["acme-gmbh1"], smtp_server.port)
    _drop_export(workspace, "acme-gmbh")
    drop(workspace, "acme-gmbh1", "notes-2026-11.csv", "Comment,Owner\nhello,me\n")
    assert cli(workspace, "ingest") == 0
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    status = capsys.readouterr().out
    assert "Quarantined files (2):" in status
    assert "quarantine/acme-gmbh/lens-2026-11.csv: there is no customer 'acme-gmbh'" in status

    # The partner moves the misspelt folder's file where it belongs: it is taken in, and
    # status lists only the file still in quarantine/.
    shutil.move(workspace.quarantine / "acme-gmbh" / "lens-2026-11.csv",
                workspace.inbox / "acme-gmbh1" / "lens-2026-11.csv")
    assert cli(workspace, "ingest") == 0
    assert "1 loaded" in capsys.readouterr().out
    assert cli(workspace, "status") == 0
    status = capsys.readouterr().out
    assert "Quarantined files (1):" in status
    assert "quarantine/acme-gmbh1/notes-2026-11.csv" in status
    assert "acme-gmbh/lens-2026-11.csv" not in status
