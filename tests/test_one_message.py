"""One message per change (issue 30): a re-run that changes a month already sent gives the
CSM one correction carrying the updated report, not an updated report, a correction and a new
alert; a re-run with nothing changed, or with the same change again, sends nothing, and a
change back is corrected once more."""
from email import message_from_bytes, policy
from io import BytesIO

import yaml
from builders import cli, contract, devices, drop, export_text, make_workspace, write_yaml
from pypdf import PdfReader

from pipelines.core.i18n import Formats
from pipelines.reports.versions import changed_figures

VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}
MONTH = "2026-03"


def _workspace(tmp_path, port):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    partner = yaml.safe_load(workspace.partner_file.read_text())
    partner["smtp"] = {"host": "127.0.0.1", "port": port, "starttls": False,
                       "from": "reports@partner.example"}
    write_yaml(workspace.partner_file, partner)
    return workspace


def _csm_messages(inbox, csm):
    return [message_from_bytes(m.as_bytes(), policy=policy.default)
            for to, m in inbox.messages if csm in to]


def test_a_changed_sent_month_is_one_correction_carrying_the_updated_report(tmp_path, smtp_server):
    workspace = _workspace(tmp_path, smtp_server.port)
    csm = yaml.safe_load(workspace.contracts_file.read_text())["customers"][0]["csm"]["email"]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 13)))
    assert cli(workspace, "run", "--month", MONTH) == 0
    first = len(_csm_messages(smtp_server.inbox, csm))
    assert first == 2  # the report and its true-up alert

    # The corrected export: 14 devices, another true-up than the one sent.
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 14)))
    assert cli(workspace, "run", "--month", MONTH) == 0
    [message] = _csm_messages(smtp_server.inbox, csm)[first:]
    subject = str(message["Subject"]).strip()
    assert subject.startswith("[Partner] Correction: True-up Acme GmbH")
    assert subject.count("[Partner]") == 1
    [pdf] = [part for part in message.iter_attachments()
             if part.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "acme.pdf"
    first_page = PdfReader(BytesIO(pdf.get_content())).pages[0].extract_text()
    assert "Updated report" in first_page
    assert "Counted 13 → 14" in first_page
    body = message.get_body(("plain",)).get_content()
    assert "you received: “True-up Acme GmbH" in body  # what was sent
    assert "+3 devices, 450.00 EUR”" in body
    assert "Now: Video true-up +4 devices, prorated amount 600.00 EUR" in body  # what holds
    assert "Counted 13 → 14" in body  # what changed in the report

    # The same change again, and no change at all: nothing more.
    assert cli(workspace, "run", "--month", MONTH) == 0
    drop(workspace, "acme", "lens-2026-03-again.csv",
         export_text(devices("Poly Studio X30", 14)))
    assert cli(workspace, "run", "--month", MONTH) == 0
    assert len(_csm_messages(smtp_server.inbox, csm)) == first + 1

    # Back to the figures first sent: one correction of what the merged message said.
    drop(workspace, "acme", "lens-2026-03-final.csv",
         export_text(devices("Poly Studio X30", 13, prefix="W")))
    assert cli(workspace, "run", "--month", MONTH) == 0
    [back] = _csm_messages(smtp_server.inbox, csm)[first + 1:]
    assert "+4 devices, 600.00 EUR”" in back.get_body(("plain",)).get_content()
    assert "Now: Video true-up +3 devices" in back.get_body(("plain",)).get_content()
    assert cli(workspace, "run", "--month", MONTH) == 0
    assert len(_csm_messages(smtp_server.inbox, csm)) == first + 2


def test_with_review_required_the_one_message_waits_for_approval(tmp_path, smtp_server):
    workspace = _workspace(tmp_path, smtp_server.port)
    csm = yaml.safe_load(workspace.contracts_file.read_text())["customers"][0]["csm"]["email"]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 13)))
    assert cli(workspace, "run", "--month", MONTH) == 0
    partner = yaml.safe_load(workspace.partner_file.read_text())
    partner["delivery"] = {"review": "required"}
    write_yaml(workspace.partner_file, partner)
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 14)))
    assert cli(workspace, "run", "--month", MONTH) == 0
    assert len(_csm_messages(smtp_server.inbox, csm)) == 2  # the first report and alert only
    assert cli(workspace, "approve", "--month", MONTH) == 0
    assert cli(workspace, "approve", "--month", MONTH) == 0
    [message] = _csm_messages(smtp_server.inbox, csm)[2:]
    assert str(message["Subject"]).strip().startswith("[Partner] Correction:")
    assert cli(workspace, "run", "--month", MONTH) == 0
    assert cli(workspace, "approve", "--month", MONTH) == 0
    assert len(_csm_messages(smtp_server.inbox, csm)) == 3


def test_a_table_worded_before_the_labels_is_no_change_when_only_its_words_differ():
    """A ledger written before issue 30 keeps its reports' tables worded as then (English:
    `video`, `TRUE_UP`; German: `nur auf Angebot`): re-rendered, the month is not "updated"."""
    now = {"rows": [["video", "TRUE_UP", 14, 10, "10.50", "40.00"],
                    ["quote_only", "QUOTE_REQUIRED", 2, 0, "0", None]]}
    english = [["video", "TRUE_UP", "14", "10", "10.50", "40.00"],
               ["quote_only", "QUOTE_REQUIRED", "2", "0", "0.00", "–"]]
    german = [["Nur Video", "TRUE-UP", "14", "10", "10,50", "40,00"],
              ["nur auf Angebot", "ANGEBOT NÖTIG", "2", "0", "0,00", "–"]]
    assert changed_figures(english, now, Formats("en")) == []
    assert changed_figures(german, now, Formats("de")) == []
    english[0][2] = "13"
    assert changed_figures(english, now, Formats("en")) == ["Video: Counted 13 → 14"]
    assert changed_figures({"rows": [["video", "WATCH", 11, 10, "10.50", "10.00"]]}, now,
                           Formats("de")) == [
        "Nur Video: Status BEOBACHTEN → TRUE-UP, Gezählt 11 → 14, Wachstum % 10,00 → 40,00",
        "Nur auf Angebot: neu in diesem Bericht"]
