"""The CSM reports: every figure in the PDF matches reconciliation.csv / rma.csv, no report names
another customer, untrusted text is escaped, and one failing report never stops the others."""
import csv
import re
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml
from builders import cli, contract, devices, drop, export_text, make_workspace
from pypdf import PdfReader

from pipelines.core.i18n import Formats
from pipelines.core.months import Month

MONTH = "2026-10"


@pytest.fixture
def demo(demo_copy):
    """The demo workspace of 2026-10 (conftest.full_demo, built once per session): a copy."""
    return demo_copy


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _pdf_text(path: Path) -> str:
    """The PDF's words; a line broken after "/" or "-" ("True-" "Up") is joined again."""
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)
    return re.sub(r"(?<=[/-]) ", "", text)


def _customers(home: Path) -> dict[str, str]:
    data = yaml.safe_load((home / "config/contracts.yaml").read_text())
    return {c["id"]: c["name"] for c in data["customers"]}


def _languages(home: Path) -> dict[str, str]:
    partner = yaml.safe_load((home / "config/partner.yaml").read_text())["partner"]
    data = yaml.safe_load((home / "config/contracts.yaml").read_text())
    return {c["id"]: c.get("language", partner.get("language", "en")) for c in data["customers"]}


def test_every_figure_in_each_pdf_matches_the_csv_files(demo):
    """The CSV's machine figures, as the report's language writes them (CLDR formats)."""
    folder = demo / "reports" / MONTH
    rows = _csv(folder / "reconciliation.csv")
    rma = {r["customer_id"]: r for r in _csv(folder / "rma.csv")}
    customers = {r["customer_id"] for r in rows}
    languages = _languages(demo)
    assert len(customers) == 7
    assert set(languages.values()) == {"de", "en"}
    for customer_id in customers:
        text = _pdf_text(folder / f"{customer_id}.pdf")
        f = Formats(languages[customer_id])
        for row in (r for r in rows if r["customer_id"] == customer_id):
            shown = {column: f.number(int(row[column])) if row[column] else "–" for column in (
                "devices_counted", "eol_excluded", "ordered_devices", "true_up_devices",
                "new_ordered_devices")}
            shown.update({column: f.decimal(Decimal(row[column])) if row[column] else "–"
                          for column in ("baseline", "growth_pct", "new_baseline")})
            for column, value in shown.items():
                if row[column]:
                    assert value in text, (customer_id, row["category"], column, value)
            if row["prorated_amount"]:
                money = f.money(Decimal(row["prorated_amount"]), row["currency"])
                assert " ".join(money.split()) in text  # the words, as _pdf_text gives them
            summary = (f"{f.category(row['category'])} {f.status(row['status'])} "
                       f"{shown['devices_counted']} {shown['eol_excluded']}")
            if row["ordered_devices"]:
                summary += f" {shown['ordered_devices']} {shown['baseline']} {shown['growth_pct']}"
            assert summary in text, (customer_id, summary)
        if customer_id in rma:
            line = rma[customer_id]
            rate = f.decimal(Decimal(line["rma_rate_pct"]))
            assert f"{f.number(int(line['headset_base']))} " in text
            assert f"{rate} %" in text
            assert f.status(line["status"]) in text


def test_no_report_names_another_customer(demo):
    folder = demo / "reports" / MONTH
    customers = _customers(demo)
    for customer_id in customers:
        for kind, text in (("pdf", _pdf_text(folder / f"{customer_id}.pdf")),
                           ("html", (folder / f"{customer_id}.html").read_text())):
            assert customers[customer_id] in text.replace("&amp;", "&")
            for other_id, other_name in customers.items():
                if other_id != customer_id:
                    assert other_id not in text, (kind, other_id)
                    assert other_name not in text, (kind, other_id)


def test_the_true_up_is_ready_to_quote_and_the_renewal_is_shown(demo):
    folder = demo / "reports" / MONTH
    text = _pdf_text(folder / "rheintal-praezision.pdf")  # a German customer
    # The demo's corrected re-export (one phone more) is what the report shows.
    assert "Anzubietender True-Up: 7 zusätzliche Geräte (127 gezählt bei 120 bestellten) × " \
           "22,00 CHF pro Jahr × 2 von 12 Monaten (vom 1. Oktober 2026 bis zum Ende der " \
           "Servicelaufzeit am 30. November 2026) = 25,67 CHF" in text
    assert "neuer Grundwert 133,35, ab November 2026" in text
    renewal = _pdf_text(folder / "lakeshore-health.pdf")  # an English one
    assert "Renewal proposal" in renewal
    assert "Next term November 1, 2026 – October 31, 2027" in renewal
    watch = _pdf_text(folder / "nordwind-energie.pdf")
    assert "ein True-Up beginnt bei 70 Geräten" in watch
    assert "lineare Fortschreibung" in watch
    watch = _pdf_text(folder / "thames-valley-legal.pdf")
    # The projection's month would lie after the term's end: not named.
    assert "does not reach it within the term (it ends November 30, 2026)" in watch


def test_the_portfolio_puts_action_first_with_totals(demo):
    text = _pdf_text(demo / "reports" / MONTH / "portfolio.pdf")  # the partner's German
    for name in _customers(demo).values():
        assert name in text
    assert text.index("rheintal-praezision") < text.index("cobalt-ridge-engineering")
    assert text.index("hanseatische-logistik") < text.index("lakeshore-health")
    assert "Portfolio Oktober 2026" in text
    assert "25,67 CHF" in text
    assert "0,00 €" in text


def test_untrusted_text_is_escaped_in_the_html(tmp_path):
    nasty = '<script>alert("x")</script>'
    workspace = make_workspace(tmp_path, [contract("acme", name=f"ACME {nasty} GmbH")])
    rows = [{"serial_number": f"S{i}", "device_model": f"Poly Studio X30 {nasty}",
             "site_name": '<img src=x onerror="alert(1)">'} for i in range(3)]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    for name in ("acme.html", "portfolio.html"):
        html = (workspace.home / "reports/2026-03" / name).read_text()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in \
        (workspace.home / "reports/2026-03/acme.html").read_text()


def test_one_failing_report_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    from pipelines.reports import render

    workspace = make_workspace(tmp_path, [contract("acme"), contract("bolt")])
    for customer_id in ("acme", "bolt"):
        drop(workspace, customer_id, "lens-2026-03.csv", export_text(devices("Studio X30", 4)))
    real_chart = render.category_chart

    calls = []

    def chart_failing_for_the_first(history, color, labels, before_onboarding):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("chart exploded")
        return real_chart(history, color, labels, before_onboarding)

    monkeypatch.setattr(render, "category_chart", chart_failing_for_the_first)
    assert cli(workspace, "run", "--month", "2026-03") == 1
    said = capsys.readouterr().err
    assert "report for acme failed: RuntimeError: chart exploded" in said
    folder = workspace.home / "reports/2026-03"
    assert (folder / "bolt.pdf").exists()
    assert (folder / "portfolio.pdf").exists()
    assert not (folder / "acme.pdf").exists()
    assert (folder / "reconciliation.csv").exists()
    # Its e-mail says the report is attached: it does not go without it, and the next run,
    # which renders it, sends it with its PDF, once.
    assert "the report message for acme (2026-03) is not sent: its report acme.pdf is " \
        "missing" in said
    assert _attached(workspace, "report-acme-") == []
    assert _attached(workspace, "report-bolt-") == [["bolt.pdf", "bolt-devices.xlsx",
                                                     "bolt-devices.csv"]]
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert _attached(workspace, "report-acme-") == [["acme.pdf", "acme-devices.xlsx",
                                                     "acme-devices.csv"]]
    assert len(_attached(workspace, "report-bolt-")) == 1


def _attached(workspace, prefix: str) -> list[list[str]]:
    """What each e-mail in outbox/ whose file name starts with `prefix` has attached."""
    return [[part.get_filename() for part in message_from_bytes(
        path.read_bytes(), policy=policy.default).iter_attachments()]
        for path in sorted(workspace.outbox.rglob(f"{prefix}*.eml"))]


def test_report_command_re_renders_one_customer(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme"), contract("bolt")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Studio X30", 4)))
    assert cli(workspace, "ingest") == 0
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    assert cli(workspace, "report", "--month", "2026-03", "--customer", "acme") == 0
    folder = workspace.home / "reports/2026-03"
    assert (folder / "acme.pdf").exists()
    assert not (folder / "bolt.pdf").exists()
    assert "4 counted" in _pdf_text(folder / "acme.pdf")



def test_a_report_with_nothing_new_is_kept_and_a_changed_or_cut_one_is_made_again(tmp_path):
    """A month rendered again with nothing new lays out no PDF: the files are left as they
    are, the time they were generated included. A PDF cut short is made again though its page
    did not change; a later snapshot changes the page and makes both again, and only that one."""
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Studio X30", 4)),
         mtime=1_770_000_000)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    folder = workspace.home / "reports/2026-03"
    names = ("acme.html", "acme.pdf", "portfolio.html", "portfolio.pdf")

    def files():
        return {name: ((folder / name).read_bytes(), (folder / name).stat().st_mtime_ns)
                for name in names}

    first = files()
    assert cli(workspace, "report", "--month", "2026-03") == 0
    assert files() == first

    pdf = folder / "acme.pdf"
    pdf.write_bytes(first["acme.pdf"][0][:1000])
    assert cli(workspace, "report", "--month", "2026-03") == 0
    assert pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert "4 counted" in _pdf_text(pdf)
    assert files()["portfolio.pdf"] == first["portfolio.pdf"]

    drop(workspace, "acme", "lens-2026-03-v2.csv", export_text(devices("Studio X30", 6)),
         mtime=1_770_003_600)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert "6 counted" in _pdf_text(pdf)
    # The portfolio names what to do, not the counts: nothing new on its page, so it is kept.
    assert [name for name in names if files()[name][1] == first[name][1]] == [
        "portfolio.html", "portfolio.pdf"]

def test_the_change_against_the_month_before_names_the_devices_that_count(tmp_path):
    # "Poly TC10" is a touch controller, classed not_counted (data/README.md): it counts in no
    # category, so it is neither counted nor named as added.
    video = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}
    workspace = make_workspace(tmp_path, [contract("acme", categories=video,
                                                   term=("2026-01-01", "2026-12-31"))])
    february = devices("Poly Studio X30", 10)
    march = devices("Poly Studio X30", 9) + devices("Poly Studio X50", 2, prefix="NEW") \
        + devices("Poly TC10", 3, prefix="TC")
    drop(workspace, "acme", "lens-2026-02.csv", export_text(february))
    drop(workspace, "acme", "lens-2026-03.csv", export_text(march))
    assert cli(workspace, "run", "--month", "2026-02") == 0
    assert cli(workspace, "run", "--month", "2026-03") == 0
    html = (workspace.reports_for(Month(2026, 3)) / "acme.html").read_text()
    assert "<p>2 devices added, 1 removed.</p>" in html
    added = re.search(r"Added:\s*(.*?)</p>", html, re.DOTALL)[1]
    assert "NEW000000 (Poly Studio X50, Berlin); NEW000001 (Poly Studio X50, Berlin)" in added
    assert "TC" not in added
    assert "SN000009 (Poly Studio X30, Berlin)" in re.search(r"Removed:\s*(.*?)</p>", html,
                                                             re.DOTALL)[1]


def test_a_device_that_moved_site_is_listed_in_the_changes(tmp_path):
    video = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}
    workspace = make_workspace(tmp_path, [contract("acme", categories=video)])
    february = devices("Poly Studio X30", 10)
    march = devices("Poly Studio X30", 8) + [
        {**device, "site_name": "Hamburg"} for device in devices("Poly Studio X30", 2, start=8)]
    drop(workspace, "acme", "lens-2026-02.csv", export_text(february))
    drop(workspace, "acme", "lens-2026-03.csv", export_text(march))
    assert cli(workspace, "run", "--month", "2026-02") == 0
    assert cli(workspace, "run", "--month", "2026-03") == 0
    html = (workspace.reports_for(Month(2026, 3)) / "acme.html").read_text()
    assert "<p>0 devices added, 0 removed, 2 moved to another site.</p>" in html
    moved = re.search(r"Moved to another site:\s*(.*?)</p>", html, re.DOTALL)[1]
    assert moved.strip() == ("SN000008 (Poly Studio X30, Berlin → Hamburg); "
                             "SN000009 (Poly Studio X30, Berlin → Hamburg)")
