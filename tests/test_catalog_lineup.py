"""HP's lineup as Poly Lens lists it since 2026 (issue 31): `catalog` over its names reports
none unclassified, and each lands where the issue says. The names, their categories and their
sources are in fixtures/catalog/hp-lineup-2026.csv; data/README.md cites each source.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from builders import cli, contract, drop, export_text, make_workspace, reconciliation

from pipelines.core.catalog import CATEGORIES

LINEUP = Path(__file__).resolve().parent / "fixtures" / "catalog" / "hp-lineup-2026.csv"
ALL = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0},
       "video": {"ordered_devices": 10, "unit_price_per_year": 180.0},
       "voice": {"ordered_devices": 10, "unit_price_per_year": 24.0}}


def lineup() -> list[tuple[str, str]]:
    lines = [line for line in LINEUP.read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    return [(row["model"], row["category"]) for row in csv.DictReader(lines)]


def test_catalog_over_hps_lineup_reports_none_unclassified(tmp_path, capsys):
    names = lineup()
    assert len(names) > 20
    workspace = make_workspace(tmp_path, [contract("acme", categories=ALL)])
    drop(workspace, "acme", "lens-2026-11.csv", export_text(
        [{"serial_number": f"HP{number:04d}", "device_model": model, "site_name": "Berlin"}
         for number, (model, _) in enumerate(names)]))
    assert cli(workspace, "ingest") == 0
    capsys.readouterr()
    review = tmp_path / "review.csv"
    assert cli(workspace, "catalog", "--csv", str(review)) == 0
    assert "Models the catalog does not know: none" in capsys.readouterr().out
    with review.open(newline="", encoding="utf-8") as handle:
        listed = list(csv.DictReader(handle))
    assert sorted(r["model"] for r in listed if r["category"] == "unclassified") == []
    assert sorted(r["model"] for r in listed if r["category"] == "not_counted") == sorted(
        model for model, category in names if category == "not_counted")
    # The counted ones, one device each, in their categories; nothing else gets a row.
    assert cli(workspace, "reconcile", "--month", "2026-11") == 0
    counted = Counter(category for _, category in names if category in CATEGORIES)
    assert {r["category"]: r["devices_counted"] for r in reconciliation(workspace, "2026-11")} \
        == {category: str(counted[category]) for category in CATEGORIES}
