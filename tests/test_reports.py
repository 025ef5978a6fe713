"""The CSM reports: every figure in the PDF matches reconciliation.csv / rma.csv, no report names
another customer, untrusted text is escaped, and one failing report never stops the others."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from builders import cli, contract, devices, drop, export_text, make_workspace
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parent.parent
MONTH = "2026-10"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("reports") / "ws"
    done = subprocess.run([sys.executable, "-m", "pipelines", "demo", "--home", str(home),
                           "--month", MONTH], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return home


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)


def _customers(home: Path) -> dict[str, str]:
    data = yaml.safe_load((home / "config/contracts.yaml").read_text())
    return {c["id"]: c["name"] for c in data["customers"]}


def test_every_figure_in_each_pdf_matches_the_csv_files(demo):
    folder = demo / "reports" / MONTH
    rows = _csv(folder / "reconciliation.csv")
    rma = {r["customer_id"]: r for r in _csv(folder / "rma.csv")}
    customers = {r["customer_id"] for r in rows}
    assert len(customers) == 7
    for customer_id in customers:
        text = _pdf_text(folder / f"{customer_id}.pdf")
        for row in (r for r in rows if r["customer_id"] == customer_id):
            for column in ("status", "devices_counted", "eol_excluded", "ordered_devices",
                           "baseline", "growth_pct", "true_up_devices", "prorated_amount",
                           "new_ordered_devices", "new_baseline"):
                if row[column]:
                    assert row[column] in text, (customer_id, row["category"], column)
            summary = (f"{row['category']} {row['status']} {row['devices_counted']} "
                       f"{row['eol_excluded']}")
            if row["ordered_devices"]:
                summary += f" {row['ordered_devices']} {row['baseline']} {row['growth_pct']}"
            assert summary in text, (customer_id, summary)
        if customer_id in rma:
            line = rma[customer_id]
            assert (f"{line['headset_rmas']} headset RMAs against {line['headset_base']} "
                    f"ordered headsets: {line['rma_rate_pct']} %") in text
            assert line["status"] in text


def test_no_report_names_another_customer(demo):
    folder = demo / "reports" / MONTH
    customers = _customers(demo)
    for customer_id in customers:
        for kind, text in (("pdf", _pdf_text(folder / f"{customer_id}.pdf")),
                           ("html", (folder / f"{customer_id}.html").read_text())):
            assert customers[customer_id] in text.replace("&amp;", "&")
            for other_id, other_name in customers.items():
                if other_id != customer_id:
                    assert other_id not in text and other_name not in text, (kind, other_id)


def test_the_true_up_is_ready_to_quote_and_the_renewal_is_shown(demo):
    folder = demo / "reports" / MONTH
    text = _pdf_text(folder / "rheintal-praezision.pdf")
    # The demo's corrected re-export (one phone more) is what the report shows.
    assert "True-up to quote: 7 devices added (127 counted against 120 ordered) × 22.00 CHF " \
           "per year × 2 of 12 months" in text
    assert "= 25.67 CHF" in text and "new baseline 133.35" in text
    renewal = _pdf_text(folder / "lakeshore-health.pdf")
    assert "Renewal proposal" in renewal and "2026-11-01 – 2027-10-31" in renewal
    watch = _pdf_text(folder / "nordwind-energie.pdf")
    assert "a true-up starts at 70 devices" in watch and "linear projection" in watch


def test_the_portfolio_puts_action_first_with_totals(demo):
    text = _pdf_text(demo / "reports" / MONTH / "portfolio.pdf")
    for name in _customers(demo).values():
        assert name in text
    assert text.index("rheintal-praezision") < text.index("cobalt-ridge-engineering")
    assert text.index("hanseatische-logistik") < text.index("lakeshore-health")
    assert "CHF 25.67" in text


def test_untrusted_text_is_escaped_in_the_html(tmp_path):
    nasty = '<script>alert("x")</script>'
    workspace = make_workspace(tmp_path, [contract("acme", name=f"ACME {nasty} GmbH")])
    rows = [{"serial_number": f"S{i}", "device_model": f"Poly Studio X30 {nasty}",
             "site_name": '<img src=x onerror="alert(1)">'} for i in range(3)]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    for name in ("acme.html", "portfolio.html"):
        html = (workspace.home / "reports/2026-03" / name).read_text()
        assert "<script>alert" not in html and "<img src=x" not in html
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

    def chart_failing_for_the_first(history, color):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("chart exploded")
        return real_chart(history, color)

    monkeypatch.setattr(render, "category_chart", chart_failing_for_the_first)
    assert cli(workspace, "run", "--month", "2026-03") == 1
    assert "report for acme failed: RuntimeError: chart exploded" in capsys.readouterr().err
    folder = workspace.home / "reports/2026-03"
    assert (folder / "bolt.pdf").exists() and (folder / "portfolio.pdf").exists()
    assert not (folder / "acme.pdf").exists()
    assert (folder / "reconciliation.csv").exists()


def test_report_command_re_renders_one_customer(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme"), contract("bolt")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Studio X30", 4)))
    assert cli(workspace, "ingest") == 0
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    assert cli(workspace, "report", "--month", "2026-03", "--customer", "acme") == 0
    folder = workspace.home / "reports/2026-03"
    assert (folder / "acme.pdf").exists() and not (folder / "bolt.pdf").exists()
    assert "4 counted" in _pdf_text(folder / "acme.pdf")
