"""Nothing reaches a CSM that a person would not sign (issue 28, interfaces.md "Review before
sending"), and every run says the whole truth: what it changed, in every month it touched.

Through the real CLI, with Lens UI device exports shaped as test_held_files.py builds them
(the demo's "lens-ui" style, pipelines/demo/exports.py; "Last Detected" as Lens's docs describe
it, info.lens.poly.com/docs/deviceusers/device-users-overview).
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from builders import (
    cli,
    contract,
    make_workspace,
    reconciliation,
    row_for,
    set_review,
    warehouse_rows,
    write_yaml,
)
from test_held_files import EXCEL_SERIALS, _mail_body, _serials, german_list, lens_ui_export, put

from pipelines.core.config import load_config
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace

HEADSETS = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}}


def _run(workspace, month: str, capsys) -> str:
    assert cli(workspace, "run", "--month", month) == 0
    return capsys.readouterr().out


def _outbox(workspace, month: str) -> list[str]:
    folder = workspace.outbox / month
    return sorted(p.name for p in folder.glob("*.eml")) if folder.exists() else []


def _ledger(workspace, month: str) -> list[tuple[str, str, str]]:
    return warehouse_rows(workspace, "SELECT kind, customer_id, status FROM mail_ledger "
                                     "WHERE month = ? ORDER BY kind, customer_id, status",
                          [month])


@pytest.fixture
def held_for_review(tmp_path, capsys):
    """November run with review required: a true-up of 10 headsets (20.00 EUR) for acme,
    and a file of bolt's that is no export at all."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS),
                                          contract("bolt", categories=HEADSETS)])
    set_review(workspace, "required")
    put(workspace, "acme", "Inventar November 2026.csv",
        lens_ui_export(_serials(110, 1), "2026-11"))
    put(workspace, "bolt", "Inventar November 2026.csv", b"Hallo Welt\n")
    out = _run(workspace, "2026-11", capsys)
    return workspace, out


def test_init_writes_review_required_and_an_old_workspace_sends_at_once(tmp_path, capsys):
    new = Workspace.resolve(tmp_path / "new")
    assert cli(new, "init") == 0
    assert "review: required" in new.partner_file.read_text()
    assert load_config(new).partner.delivery.review == "required"
    old = make_workspace(tmp_path / "old", [contract("acme", categories=HEADSETS)])
    put(old, "acme", "Inventar November 2026.csv", lens_ui_export(_serials(110, 1), "2026-11"))
    out = _run(old, "2026-11", capsys)
    assert "waiting for approval" not in out
    assert [n.split("-")[0] for n in _outbox(old, "2026-11")] == ["report", "true_up"]


@pytest.mark.parametrize(("written", "read"), [("off", "off"), ("required", "required"),
                                               (False, "off"), (True, "required")])
def test_yaml_reads_off_as_false_and_review_still_means_it(tmp_path, written, read):
    workspace = make_workspace(tmp_path, [])
    workspace.partner_file.write_text(f"delivery: {{review: {str(written).lower()}}}\n")
    assert load_config(workspace).partner.delivery.review == read


def test_with_review_required_a_run_sends_nothing_to_a_csm(held_for_review, capsys):
    workspace, out = held_for_review
    assert "True-up acme Headsets: +10 devices, 20.00 EUR" in out
    assert "3 waiting for approval" in out  # acme's report and true-up, bolt's report
    # The partner's own staff hear of the rejected file and the missing inventory at once;
    # the CSM hears nothing yet.
    assert [n.split("-")[0] for n in _outbox(workspace, "2026-11")] == [
        "file_rejected", "missing_inventory"]
    assert ("report", "acme", "waiting") in _ledger(workspace, "2026-11")
    assert ("true_up", "acme", "waiting") in _ledger(workspace, "2026-11")

    assert cli(workspace, "review", "--month", "2026-11") == 0
    review = capsys.readouterr().out
    assert "Waiting for approval (3 messages, 2026-11)" in review
    assert "2026-11 acme (Acme GmbH):" in review
    assert "report: [Partner] Poly+ Enterprise report 2026-11: Acme GmbH" in review
    assert "true_up: [Partner] True-up Acme GmbH Headsets 2026-11: +10 devices" in review
    assert "to jana@example.com, service@partner.example" in review
    assert "first report for the month" in review
    assert cli(workspace, "status") == 0
    assert "Waiting for approval (3 messages" in capsys.readouterr().out


def test_approve_sends_each_waiting_message_exactly_once(held_for_review, capsys):
    workspace, _ = held_for_review
    assert cli(workspace, "approve", "--month", "2026-11") == 0
    assert "E-mail: 3 new, 3 sent" in capsys.readouterr().out
    kinds = sorted(n.split("-")[0] for n in _outbox(workspace, "2026-11"))
    assert kinds == ["file_rejected", "missing_inventory", "report", "report", "true_up"]
    assert cli(workspace, "approve", "--month", "2026-11") == 0
    assert "Nothing waits for approval for 2026-11: nothing was sent" in \
        capsys.readouterr().out
    # A run again composes the same messages: already sent, nothing waits, nothing goes.
    out = _run(workspace, "2026-11", capsys)
    assert "E-mail: 0 new, 0 sent" in out
    assert sorted(n.split("-")[0] for n in _outbox(workspace, "2026-11")) == kinds


def test_approve_for_one_customer_leaves_the_others_waiting(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS),
                                          contract("bolt", categories=HEADSETS)])
    set_review(workspace, "required")
    put(workspace, "acme", "Inventar November 2026.csv",
        lens_ui_export(_serials(100, 1), "2026-11"))
    put(workspace, "bolt", "Inventar November 2026.csv",
        lens_ui_export(_serials(100, 2), "2026-11"))
    _run(workspace, "2026-11", capsys)
    assert cli(workspace, "approve", "--month", "2026-11", "--customer", "bolt") == 0
    assert [n.split("-")[1] for n in _outbox(workspace, "2026-11")] == ["bolt"]
    assert ("report", "acme", "waiting") in _ledger(workspace, "2026-11")
    assert cli(workspace, "approve", "--file", "x", "--customer", "bolt") == 2  # one or other


def test_a_changed_figure_before_approval_replaces_the_waiting_message(held_for_review,
                                                                        capsys):
    workspace, _ = held_for_review
    # A corrected November export, two headsets more, before anyone approved.
    put(workspace, "acme", "Inventar November 2026 korrigiert.csv",
        lens_ui_export(_serials(112, 1), "2026-11"))
    out = _run(workspace, "2026-11", capsys)
    assert "2026-11 acme Headsets: True-up +10 devices 20.00 EUR → True-up +12 devices " \
           "24.00 EUR" in out
    assert "2 waiting ones withdrawn" in out
    assert cli(workspace, "review", "--month", "2026-11") == 0
    review = capsys.readouterr().out
    assert "+12 devices" in review
    assert "+10 devices" not in review
    assert cli(workspace, "approve", "--month", "2026-11") == 0
    capsys.readouterr()
    sent = [n for n in _outbox(workspace, "2026-11") if "-acme-" in n]
    assert sorted(n.split("-")[0] for n in sent) == ["report", "true_up"]  # nothing stale
    [true_up] = workspace.outbox.glob("2026-11/true_up-acme-*.eml")
    assert "+12" in true_up.read_text()
    [report] = workspace.outbox.glob("2026-11/report-acme-*.eml")
    assert "(updated" not in report.read_text()  # the CSM never saw the one withdrawn


def test_approve_refuses_a_month_whose_files_came_in_after_it_was_composed(held_for_review,
                                                                           capsys):
    workspace, _ = held_for_review
    put(workspace, "acme", "Inventar November 2026 korrigiert.csv",
        lens_ui_export(_serials(112, 1), "2026-11"))
    assert cli(workspace, "ingest", "--month", "2026-11") == 0
    capsys.readouterr()
    assert cli(workspace, "approve", "--month", "2026-11") == 2
    error = capsys.readouterr().err
    assert "files came in for 2026-11 after the messages waiting were composed" in error
    assert "run `python -m pipelines run --month 2026-11`" in error
    assert [n.split("-")[0] for n in _outbox(workspace, "2026-11")] == [
        "file_rejected", "missing_inventory"]


def test_the_month_in_progress_is_a_preview_that_sends_and_queues_nothing(tmp_path, capsys):
    """The slip: `run --month` of the current month on its 4th sent reminders, NO_DATA reports
    and an RMA alert. Now the month is reconciled and rendered, and nothing else happens."""
    this = Month.of(datetime.now(UTC).date())
    term = (str(this.plus(-2).first_day), str(this.plus(9).last_day))
    workspace = make_workspace(tmp_path, [
        contract("acme", categories=HEADSETS, term=term),
        contract("bolt", categories=HEADSETS, term=term)])  # no inventory: NO_DATA
    put(workspace, "acme", f"Inventar {this}.csv", lens_ui_export(_serials(110, 1), str(this)))
    out = _run(workspace, str(this), capsys)
    assert (f"{this} is still in progress (UTC): its reports are a preview and nothing was "
            f"sent or queued for it; run it for real from {this.plus(1).first_day}") in out
    assert row_for(reconciliation(workspace, str(this)), "acme", "headset")["status"] == \
        "TRUE_UP"
    assert (workspace.reports_for(this) / "acme.pdf").exists()
    assert _outbox(workspace, str(this)) == []
    assert _ledger(workspace, str(this)) == []  # no reminder for bolt, no alert, no report


def test_status_keeps_an_older_months_true_up_open(tmp_path, capsys):
    """The slip: one stray December file made `status` show only December, hiding the open
    November true-up."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS),
                                          contract("bolt", categories=HEADSETS)])
    put(workspace, "acme", "Inventar Oktober 2026.csv", lens_ui_export(_serials(110, 1),
                                                                       "2026-10"))
    put(workspace, "bolt", "Inventar November 2026.csv", lens_ui_export(_serials(100, 2),
                                                                        "2026-11"))
    _run(workspace, "2026-10", capsys)
    _run(workspace, "2026-11", capsys)
    assert cli(workspace, "status") == 0
    status = capsys.readouterr().out
    assert "2026-10 acme Headsets True-up: +10 devices, 30.00 EUR" in status

    # Renewed, the next term carries the devices the true-up added: the quote was acted on.
    config = yaml.safe_load(workspace.contracts_file.read_text())
    first = config["customers"][0]
    config["customers"][0] = {**{k: v for k, v in first.items()
                                 if k not in ("term", "categories")},
                              "terms": [{"term": first["term"], "categories": HEADSETS},
                                        {"term": {"start": "2027-01-01", "end": "2027-12-31"},
                                         "categories": HEADSETS}]}
    write_yaml(workspace.contracts_file, config)
    assert cli(workspace, "status") == 0
    assert "2026-10 acme Headsets True-up" not in capsys.readouterr().out


def test_a_rerun_names_every_month_it_changed_and_counts_every_message(tmp_path, capsys):
    """The slip: a corrected October export turned November into a new true-up that was
    mailed, while the run said "E-mail: 2 new" (4 were written) and never named November."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Inventar Oktober 2026.csv", lens_ui_export(_serials(106, 1),
                                                                       "2026-10"))
    _run(workspace, "2026-10", capsys)
    put(workspace, "acme", "Inventar November 2026.csv", lens_ui_export(_serials(110, 1),
                                                                        "2026-11"))
    _run(workspace, "2026-11", capsys)
    written = set(_outbox(workspace, "2026-10")) | set(_outbox(workspace, "2026-11"))
    # The corrected October: 100 headsets, so October was no true-up, and November's 110
    # are one against 100 ordered instead of none against 106.
    put(workspace, "acme", "Inventar Oktober 2026 korrigiert.csv",
        lens_ui_export(_serials(100, 1), "2026-10"))
    out = _run(workspace, "2026-11", capsys)
    assert "Changed by this run (2026-10, 2026-11):" in out
    assert "2026-10 acme Headsets: True-up +6 devices 18.00 EUR → OK" in out
    assert "2026-11 acme Headsets: OK → True-up +10 devices 20.00 EUR" in out
    new = (set(_outbox(workspace, "2026-10")) | set(_outbox(workspace, "2026-11"))) - written
    assert f"E-mail: {len(new)} new, {len(new)} sent" in out
    # October's correction carrying its updated report; November's true-up and report
    assert sorted(name.split("-")[0] for name in new) == ["correction", "report", "true_up"]


def test_the_missing_inventory_reminder_names_the_held_file(tmp_path, capsys):
    """A month without inventory because its file is held: the reminder says so, and where
    the file waits, instead of asking for a file the partner already sent."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    put(workspace, "acme", "Inventar 2026-11.csv", german_list(EXCEL_SERIALS))
    _run(workspace, "2026-11", capsys)
    [reminder] = workspace.outbox.glob("2026-11/missing_inventory-acme-*.eml")
    body = " ".join(_mail_body(reminder).split())
    assert "The upload inbox/acme/Inventar 2026-11.csv for 2026-11 is held: 6 serials were " \
           "turned into numbers by a spreadsheet" in body
    assert "(kept as quarantine/acme/Inventar 2026-11.csv)" in body
