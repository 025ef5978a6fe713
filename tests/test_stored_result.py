"""`reconcile` stores the month's result; the DAG's render, portfolio and send tasks read it
(and a published copy of the warehouse) instead of computing the month again."""
import re
from dataclasses import astuple, replace

import pytest
from builders import cli, contract, devices, drop, export_text, make_workspace

from pipelines.core.config import load_config
from pipelines.core.errors import RunError
from pipelines.core.months import Month
from pipelines.jobs.monthly import reconcile_for_readers, render_from_copy
from pipelines.reconciliation.month import compute_month, stored_month
from pipelines.warehouse.connection import open_warehouse
from pipelines.warehouse.published import published_copy

MARCH = Month.parse("2026-03")


def _quarter_with_a_true_up(tmp_path):
    """21 ordered (baseline 22.05, a fraction), a true-up in February, the term's last month
    in March (a renewal proposal), and a second customer."""
    workspace = make_workspace(tmp_path, [
        contract("acme", {"video": {"ordered_devices": 21, "unit_price_per_year": 180.0},
                          "headset": {"ordered_devices": 10, "unit_price_per_year": 24.0}},
                 term=("2026-01-01", "2026-03-31")),
        contract("brandt")])
    for month, count in (("2026-01", 21), ("2026-02", 23), ("2026-03", 24)):
        drop(workspace, "acme", f"lens-{month}.csv", export_text(
            devices("Studio X30", count) + devices("Voyager Focus 2", 9, prefix="HS")))
    drop(workspace, "brandt", "lens-2026-03.csv", export_text(devices("Studio X30", 90)))
    assert cli(workspace, "ingest") == 0
    return workspace


def test_the_stored_result_is_the_computed_one_exactly(tmp_path):
    workspace = _quarter_with_a_true_up(tmp_path)
    config = load_config(workspace)
    reconcile_for_readers(config, MARCH)
    with open_warehouse(workspace, read_only=True) as con:
        stored, computed = stored_month(con, config, MARCH), compute_month(con, config, MARCH)
        assert stored_month(con, config, Month.parse("2026-02")) is None  # never reconciled
        # The warehouse's rows are the result's, value for value and type for type.
        assert set(con.execute("FROM reconciliation").fetchall()) == \
            {astuple(row) for row in computed.rows}
        assert set(con.execute("SELECT * EXCLUDE (month) FROM rma_results").fetchall()) == \
            {astuple(row) for row in computed.rma}
    assert stored == replace(computed, through_receipt=4)  # it saw the four uploads
    acme_video = stored.replays[("acme", "video")]
    assert [m.status for m in acme_video] == ["OK", "TRUE_UP", "WATCH"]
    assert str(acme_video[0].baseline) == "441/20"  # 22.05, exact
    assert [p.customer.id for p in stored.renewals] == ["acme"]


def test_reports_from_the_published_copy_equal_the_command_lines(tmp_path):
    workspace = _quarter_with_a_true_up(tmp_path)
    config = load_config(workspace)
    reconcile_for_readers(config, MARCH)
    copy = published_copy(workspace, MARCH)
    assert copy.parent.name == ".published"
    assert copy.exists()
    folder = workspace.reports_for(MARCH)
    by_copy = {}
    for customer_id in ("acme", "brandt", None):
        for path in render_from_copy(config, MARCH, customer_id).written:
            by_copy[path.name] = path.read_text() if path.suffix == ".html" else None
    assert sorted(by_copy) == ["acme-devices.csv", "acme-devices.xlsx", "acme.html", "acme.pdf",
                               "brandt-devices.csv", "brandt-devices.xlsx", "brandt.html",
                               "brandt.pdf", "portfolio.html", "portfolio.pdf"]
    assert cli(workspace, "report", "--month", "2026-03") == 0
    generated = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")  # the time of rendering
    for name, text in by_copy.items():
        if text is not None:
            again = (folder / name).read_text()
            assert generated.sub("", text) == generated.sub("", again), name


def test_a_render_without_a_published_copy_says_what_to_clear(tmp_path):
    workspace = _quarter_with_a_true_up(tmp_path)
    config = load_config(workspace)
    reconcile_for_readers(config, Month.parse("2026-02"))  # publishes February only
    with pytest.raises(RunError, match="clear the DAG run's `reconcile` task for 2026-03"):
        render_from_copy(config, MARCH, "acme")
