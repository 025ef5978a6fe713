"""A contract over time, through the CLI (issue 16, in part): months that have not begun are
refused, and an alert a later reconciliation no longer bears out is corrected exactly once."""
from datetime import UTC, datetime
from email import message_from_bytes, policy

from builders import (
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    reconciliation,
    row_for,
)

from pipelines.core.months import Month

VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}


def _messages(workspace, month: str, kind: str) -> list:
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted((workspace.outbox / month).glob(f"{kind}-*.eml"))]


def test_a_month_that_has_not_begun_is_refused_and_nothing_is_written_or_sent(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 4)))
    future = str(Month.of(datetime.now(UTC).date()).plus(4))
    before = sorted(p.relative_to(workspace.home) for p in workspace.home.rglob("*"))
    for command in (["run"], ["ingest"], ["reconcile"], ["report"]):
        assert cli(workspace, *command, "--month", future) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [err[0]] and f"--month {future} has not begun" in err[0]
    assert sorted(p.relative_to(workspace.home) for p in workspace.home.rglob("*")) == before


def test_a_withdrawn_true_up_sends_exactly_one_correction(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    [alert] = _messages(workspace, "2026-03", "true_up")
    # The export double-listed two rooms: the corrected one holds 10 devices, no true-up.
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["status"] == "OK"
    [correction] = _messages(workspace, "2026-03", "correction")
    assert correction["Subject"] == f"[Partner] Correction: {alert['Subject']}"
    assert sorted(correction["To"].split(", ")) == sorted(
        alert["To"].split(", ") + alert.get_all("Cc", []))
    text = correction.get_body(("plain",)).get_content()
    assert alert["Subject"] in text
    assert "video OK: 10 devices counted against 10 ordered (growth 0.00 %)" in text
    reports = [m["Subject"] for m in _messages(workspace, "2026-03", "report")]
    assert sorted(reports) == ["[Partner] Poly+ Enterprise report 2026-03: Acme GmbH",
                               ("[Partner] Poly+ Enterprise report 2026-03: Acme GmbH "
                               "(updated: the figures changed)")]
    # Once: the same run again sends nothing more, and status names the correction.
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert len(_messages(workspace, "2026-03", "correction")) == 1
    assert len(_messages(workspace, "2026-03", "report")) == 2
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    assert "Corrections sent (1):" in capsys.readouterr().out


def test_a_changed_true_up_is_corrected_and_the_new_one_alerted(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    drop(workspace, "acme", "lens-2026-03-final.csv", export_text(devices("Poly Studio X30", 14)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    alerts = sorted(m["Subject"] for m in _messages(workspace, "2026-03", "true_up"))
    assert len(alerts) == 2 and any("+4 devices" in s for s in alerts)
    [correction] = _messages(workspace, "2026-03", "correction")
    assert "+2 devices" in correction["Subject"]
    assert "video true-up +4 devices" in correction.get_body(("plain",)).get_content()


def test_the_portfolio_lists_what_needs_action(tmp_path, capsys):
    headset = {"headset": {"ordered_devices": 10, "unit_price_per_year": 12.0}}
    workspace = make_workspace(tmp_path, [
        contract("acme", categories=VIDEO, term=("2026-01-01", "2026-03-31")),
        contract("bolt", categories=VIDEO),
        contract("cara", categories=headset)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 10)))
    drop(workspace, "bolt", "lens-2026-03.csv", export_text(
        devices("Poly Studio X30", 10) + devices("Poly RealPresence DMA 7000", 1, "D")))
    drop(workspace, "bolt", "notes-2026-03.csv", "just some notes\n")
    assert cli(workspace, "run", "--month", "2026-03") == 0
    html = (workspace.home / "reports/2026-03/portfolio.html").read_text(encoding="utf-8")
    assert '<a href="acme.html">Acme GmbH</a>' in html
    assert "renewal due: the term ends 2026-03-31" in html
    assert "1 quote-only device: a separate quote" in html
    assert "1 upload rejected: see quarantine/bolt/" in html
    order = [html.index(f'href="{c}.html"') for c in ("acme", "bolt", "cara")]
    assert order == sorted(order)  # renewal, then quote and rejected upload, then no data
    cara = html[html.index('href="cara.html"'):].split("</tr>")[0]
    assert "BREACH" not in cara and "badge OK" not in cara.split("NO_DATA")[-1]
    # One customer's report again: the portfolio is rendered again with it.
    before = (workspace.home / "reports/2026-03/portfolio.pdf").stat().st_mtime_ns
    assert cli(workspace, "report", "--month", "2026-03", "--customer", "bolt") == 0
    assert (workspace.home / "reports/2026-03/portfolio.pdf").stat().st_mtime_ns > before
