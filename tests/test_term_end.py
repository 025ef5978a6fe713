"""A true-up in a term's last month (issue 30): its new baseline applies from the next term,
which the report and the alert name by its first day, not as a month of this term."""
from email import message_from_bytes, policy

from builders import cli, contract, devices, drop, export_text, make_workspace

VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}


def test_a_true_up_in_the_last_month_names_the_next_term(tmp_path):
    # A term from mid-month: the next one starts on the 1st of the month after its end.
    term = ("2025-11-15", "2026-11-14")
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO, term=term)])
    drop(workspace, "acme", "lens-2026-11.csv", export_text(devices("Poly Studio X30", 11)))
    assert cli(workspace, "run", "--month", "2026-11") == 0
    html = (workspace.home / "reports/2026-11/acme.html").read_text(encoding="utf-8")
    assert ("New ordered devices 11, new baseline 11.55, from the next term on, which starts "
            "December 1, 2026.") in html
    assert "from December 2026 on" not in html
    [alert] = (workspace.outbox / "2026-11").glob("true_up-acme-*.eml")
    text = message_from_bytes(alert.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    assert "new baseline 11.55 from the next term on, which starts December 1, 2026." in text


def test_a_true_up_before_the_last_month_names_the_next_month(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 11)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    html = (workspace.home / "reports/2026-10/acme.html").read_text(encoding="utf-8")
    assert "New ordered devices 11, new baseline 11.55, from November 2026 on." in html
