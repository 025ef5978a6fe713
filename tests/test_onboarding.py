"""A customer onboarded mid-term (issue 30): the months before its first inventory in the term
are "before onboarding", not "no inventory", in its charts; with `first_month` in
contracts.yaml the partner says so before the first inventory arrives, and owes no upload."""
import re

from builders import cli, contract, devices, drop, export_text, make_workspace

VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}


def _report(workspace, month: str, name: str = "acme") -> str:
    return (workspace.home / "reports" / month / f"{name}.html").read_text(encoding="utf-8")


def _chart_words(html: str) -> set[str]:
    """The words of the report's charts, its legend's among them (SVG text kept as text)."""
    return set(re.findall(r"<text [^>]*>([^<]*)</text>", html))


def test_months_before_the_first_inventory_are_before_onboarding_not_missing(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-10.csv", export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "run", "--month", "2026-10") == 0
    october = _chart_words(_report(workspace, "2026-10"))
    assert "before onboarding" in october  # January to September
    assert "no inventory" not in october
    assert cli(workspace, "run", "--month", "2026-11") == 0  # November's upload is missing
    november = _chart_words(_report(workspace, "2026-11"))
    assert {"before onboarding", "no inventory"} <= november
    assert list((workspace.outbox / "2026-11").glob("missing_inventory-acme-*.eml"))


def test_first_month_says_the_customer_is_not_onboarded_yet_and_owes_no_upload(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO,
                                                   first_month="2026-11")])
    assert cli(workspace, "run", "--month", "2026-10") == 0
    assert not list((workspace.outbox / "2026-10").glob("missing_inventory-*.eml"))
    report = _report(workspace, "2026-10")
    assert "<b>Before onboarding:</b> the first inventory is expected for November 2026." \
        in report
    assert '<span class="badge ONBOARDING">Before onboarding</span>' in report
    assert "no inventory" not in _chart_words(report)
    portfolio = _report(workspace, "2026-10", "portfolio")
    assert '<span class="badge ONBOARDING">Before onboarding</span>' in portfolio
    assert "No data" not in portfolio
    # From November on, a missing upload is owed again.
    assert cli(workspace, "run", "--month", "2026-11") == 0
    assert list((workspace.outbox / "2026-11").glob("missing_inventory-acme-*.eml"))
