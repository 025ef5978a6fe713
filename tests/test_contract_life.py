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
    write_yaml,
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
        assert err == [err[0]]
        assert f"--month {future} has not begun" in err[0]
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
    # One message for the change (issue 30): the correction carries the updated report.
    [correction] = _messages(workspace, "2026-03", "correction")
    subject = correction["Subject"].strip()  # the e-mail package folds it after "Subject:"
    assert subject == "[Partner] Correction: " + alert["Subject"].removeprefix("[Partner] ")
    assert sorted(correction["To"].split(", ") + correction.get_all("Cc", [])) == sorted(
        alert["To"].split(", ") + alert.get_all("Cc", []))
    text = correction.get_body(("plain",)).get_content()
    assert alert["Subject"].removeprefix("[Partner] ") in text
    assert "Video OK: 10 devices counted against 10 ordered (growth 0.00 %)" in text
    assert "Video: Status True-up → OK, Counted 12 → 10, Growth % 20.00 → 0.00" in text
    assert [m.get_filename() for m in correction.iter_attachments()][0] == "acme.pdf"
    reports = [m["Subject"] for m in _messages(workspace, "2026-03", "report")]
    assert reports == ["[Partner] Poly+ Enterprise report 2026-03: Acme GmbH"]
    # Once: the same run again sends nothing more, and status names the correction.
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert len(_messages(workspace, "2026-03", "correction")) == 1
    assert len(_messages(workspace, "2026-03", "report")) == 1
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    assert "Corrections sent (1):" in capsys.readouterr().out


def test_a_changed_true_up_is_corrected_and_the_new_one_alerted(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    drop(workspace, "acme", "lens-2026-03-final.csv", export_text(devices("Poly Studio X30", 14)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    # One message (issue 30): the correction states the new true-up, no second alert.
    [alert] = [m["Subject"] for m in _messages(workspace, "2026-03", "true_up")]
    assert "+2 devices" in alert
    [correction] = _messages(workspace, "2026-03", "correction")
    assert "+2 devices" in correction["Subject"]
    assert "Video true-up +4 devices" in correction.get_body(("plain",)).get_content()


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
    assert "renewal due: the term ends March 31, 2026" in html
    assert "1 quote-only device: a separate quote" in html
    assert "1 upload rejected: see quarantine/bolt/" in html
    order = [html.index(f'href="{c}.html"') for c in ("acme", "bolt", "cara")]
    assert order == sorted(order)  # renewal, then quote and rejected upload, then no data
    cara = html[html.index('href="cara.html"'):].split("</tr>")[0]
    assert "BREACH" not in cara
    assert "badge OK" not in cara.split("NO_DATA")[-1]
    # One customer's report again: the portfolio comes with it (made again where it is not
    # what the month's result makes: here, its PDF is gone).
    portfolio = workspace.home / "reports/2026-03/portfolio.pdf"
    portfolio.unlink()
    assert cli(workspace, "report", "--month", "2026-03", "--customer", "bolt") == 0
    assert portfolio.read_bytes().startswith(b"%PDF")


CONTRACTS_WITH_COMMENTS = """\
# Our contracts. Keep this comment: renew must not touch it.
customers:
  - id: acme          # the inbox folder
    name: Acme GmbH
    master_account_id: MA-1
    csm: {name: Jana Beispiel, email: jana@example.com}
    partner_contacts: [service@partner.example]
    currency: EUR
    term: {start: 2026-01-01, end: 2026-03-31}   # first year, signed 2025-12
    categories:
      # 10 Studio X30 in the board rooms
      video: {ordered_devices: 10, unit_price_per_year: 180.00}
  - id: bravo
    name: Bravo AG    # unchanged by acme's renewal
    master_account_id: MA-2
    csm: {name: Jana Beispiel, email: jana@example.com}
    currency: EUR
    term: {start: 2026-01-01, end: 2026-12-31}
    categories:
      video: {ordered_devices: 10, unit_price_per_year: 180.00}
"""


def _renewable(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    workspace.contracts_file.write_text(CONTRACTS_WITH_COMMENTS, encoding="utf-8")
    for month, count in (("2026-02", 10), ("2026-03", 12)):
        drop(workspace, "acme", f"lens-{month}.csv", export_text(devices("Poly Studio X30", count)))
    return workspace


def test_renew_appends_the_proposal_as_the_next_term_and_keeps_the_old_terms_months(
        tmp_path, capsys):
    workspace = _renewable(tmp_path)
    assert cli(workspace, "renew", "--customer", "acme") == 2  # 2026-03 not reconciled yet
    assert "run `python -m pipelines reconcile --month 2026-03` first" in capsys.readouterr().err
    for month in ("2026-02", "2026-03"):
        assert cli(workspace, "run", "--month", month) == 0
    last_month = workspace.reports_for(Month(2026, 3))
    before = {p.name: p.read_bytes() for p in last_month.glob("*.csv")}
    # A true-up in the term's last month: 12 devices go into the proposal, the baseline resets.
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["status"] == "TRUE_UP"
    report_mail = _messages(workspace, "2026-03", "report")[0].get_body(("plain",)).get_content()
    assert "python -m pipelines renew --customer acme" in report_mail
    capsys.readouterr()

    assert cli(workspace, "renew", "--customer", "acme") == 0
    out = capsys.readouterr().out
    assert "term 2026-04-01..2026-06-30 added" in out
    assert "Video: 12 ordered devices" in out
    text = workspace.contracts_file.read_text()
    comments = [line[line.index("#"):] for line in CONTRACTS_WITH_COMMENTS.splitlines()
                if "#" in line]
    assert len(comments) == 5
    assert all(comment in text for comment in comments)
    bravo = CONTRACTS_WITH_COMMENTS[CONTRACTS_WITH_COMMENTS.index("  - id: bravo"):]
    assert text.endswith(bravo)  # the other customer's lines, as they were
    kept = workspace.config_dir / "contracts.before-renew-acme-2026-04-01.yaml"
    assert kept.read_text() == CONTRACTS_WITH_COMMENTS

    # The old term's last month again: byte-identical; the new term's first month: the proposal.
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    assert {p.name: p.read_bytes() for p in last_month.glob("*.csv")} == before
    drop(workspace, "acme", "lens-2026-04.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-04") == 0
    april = row_for(reconciliation(workspace, "2026-04"), "acme", "video")
    assert (april["status"], april["ordered_devices"], april["baseline"]) == ("OK", "12", "12.60")
    capsys.readouterr()
    assert cli(workspace, "renew", "--customer", "acme") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "already has its next term" in err[0]


def test_each_month_is_reconciled_against_the_term_that_contains_it(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    terms = [{"term": {"start": "2025-01-01", "end": "2025-12-31"},
              "categories": {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}},
             {"term": {"start": "2026-01-01", "end": "2026-12-31"},
              "categories": {"video": {"ordered_devices": 20, "unit_price_per_year": 180.0},
                             "voice": {"ordered_devices": 5, "unit_price_per_year": 24.0}}}]
    entry = contract("acme")
    del entry["term"], entry["categories"]
    write_yaml(workspace.contracts_file, {"customers": [{**entry, "terms": terms}]})
    drop(workspace, "acme", "lens-2025-12.csv", export_text(devices("Poly Studio X30", 20)))
    drop(workspace, "acme", "lens-2026-01.csv", export_text(devices("Poly Studio X30", 20)))
    assert cli(workspace, "run", "--month", "2025-12") == 0
    assert cli(workspace, "run", "--month", "2026-01") == 0
    december = reconciliation(workspace, "2025-12")
    january = reconciliation(workspace, "2026-01")
    assert [r["category"] for r in december] == ["video"]
    assert row_for(december, "acme", "video")["status"] == "TRUE_UP"  # 20 against 10
    assert row_for(january, "acme", "video")["ordered_devices"] == "20"  # the new term's own
    assert row_for(january, "acme", "video")["status"] == "OK"
    assert row_for(january, "acme", "voice")["status"] == "OK"  # added at renewal: 0 counted
    html = (workspace.reports_for(Month(2026, 1)) / "acme.html").read_text()
    assert "January 1, 2026 – December 31, 2026" in html


def test_overlapping_terms_and_a_month_before_every_term_are_refused_in_one_line(
        tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    assert cli(workspace, "reconcile", "--month", "2025-06") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("--month 2025-06 is before every contract term in contracts.yaml (the first "
                   "starts 2026-01-01): nothing was done; choose 2026-01 or a later month")]
    entry = contract("acme")
    del entry["term"], entry["categories"]
    video = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}
    write_yaml(workspace.contracts_file, {"customers": [{**entry, "terms": [
        {"term": {"start": "2026-01-01", "end": "2026-12-31"}, "categories": video},
        {"term": {"start": "2026-12-01", "end": "2027-11-30"}, "categories": video}]}]})
    assert cli(workspace, "status") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("contracts.yaml: customer 'acme': terms 1 (2026-01-01..2026-12-31) "
                           "and 2 (2026-12-01..2027-11-30) overlap (lines ")


def _ledger(workspace, statement: str) -> None:
    """What a crash leaves in the mail ledger, made by hand: the run was killed between two
    steps of sending, the next run finds the ledger so."""
    import duckdb

    with duckdb.connect(str(workspace.warehouse)) as con:
        con.execute(statement)


def test_a_correction_goes_out_once_across_a_crash_between_sending_and_the_ledger(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    [sent] = (workspace.outbox / "2026-03").glob("correction-*.eml")
    content = sent.read_bytes()
    # Killed after the message went out, before its outcome was committed: still queued.
    _ledger(workspace, "UPDATE mail_ledger SET status = 'queued', sent_at = NULL "
                       "WHERE kind = 'correction' AND status = 'sent'")
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert [p.read_bytes() for p in (workspace.outbox / "2026-03").glob("correction-*.eml")] \
        == [content]
    # Killed after composing, before the message was queued (with the lines of what it
    # carries, in one transaction): composed again, the same one.
    sent.unlink()
    _ledger(workspace, "DELETE FROM mail_ledger WHERE kind = 'correction' OR status = 'carried'")
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert [p.name for p in (workspace.outbox / "2026-03").glob("correction-*.eml")] \
        == [sent.name]
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert len(list((workspace.outbox / "2026-03").glob("correction-*.eml"))) == 1


def test_two_terms_may_not_share_a_month(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    entry = contract("acme")
    del entry["term"], entry["categories"]
    write_yaml(workspace.contracts_file, {"customers": [{**entry, "terms": [
        {"term": {"start": "2026-01-01", "end": "2026-06-15"}, "categories": VIDEO},
        {"term": {"start": "2026-06-16", "end": "2027-06-15"}, "categories": VIDEO}]}]})
    assert cli(workspace, "status") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "terms 1 (2026-01-01..2026-06-15) and 2 (2026-06-16..2027-06-15) share the month " \
           "2026-06 (a month belongs to one term)" in line
