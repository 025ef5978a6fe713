"""The demo generator: deterministic, shifted by last_month, consistent with its contracts."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.core.months import month_in_name
from pipelines.demo.build import build_demo_workspace

_CUSTOMER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _files(home: Path) -> dict[str, tuple[bytes, int]]:
    return {path.relative_to(home).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(home.rglob("*")) if path.is_file()}


def _folders(home: Path) -> list[str]:
    return sorted(path.relative_to(home).as_posix() for path in home.rglob("*") if path.is_dir())


def _inventory_months(home: Path) -> dict[str, list[str]]:
    """Customer -> the months named by its inventory exports (RMA logs left out)."""
    return {folder.name: sorted(str(month_in_name(path.name)) for path in folder.iterdir()
                                if not path.name.lower().startswith("rma"))
            for folder in sorted((home / "inbox").iterdir())}


def test_same_arguments_give_identical_files_and_mtimes(tmp_path):
    first = build_demo_workspace(tmp_path / "a", "2026-10")
    second = build_demo_workspace(tmp_path / "b", "2026-10")

    files = _files(first.home)
    assert len(files) > 80
    assert files == _files(second.home)
    assert _folders(first.home) == _folders(second.home)
    assert (first.months, first.customer_ids) == (second.months, second.customer_ids)


def test_a_later_last_month_shifts_every_file_month(tmp_path):
    october = build_demo_workspace(tmp_path / "a", "2026-10")
    march = build_demo_workspace(tmp_path / "b", "2027-03")

    assert october.months == ("2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04",
                              "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10")
    assert march.months[0] == "2026-04"
    assert march.months[-1] == "2027-03"

    shift = dict(zip(october.months, march.months, strict=False))
    before, after = _inventory_months(october.home), _inventory_months(march.home)
    assert after == {customer: [shift[month] for month in months]
                     for customer, months in before.items()}
    assert set().union(*after.values()) == set(march.months)


def test_every_customer_id_is_valid_and_every_inbox_folder_is_a_customer(tmp_path):
    workspace = build_demo_workspace(tmp_path / "demo", "2026-10")

    contracts = yaml.safe_load((workspace.home / "config" / "contracts.yaml").read_text("utf-8"))
    ids = [customer["id"] for customer in contracts["customers"]]
    assert len(ids) >= 7
    assert len(set(ids)) == len(ids)
    assert all(_CUSTOMER_ID.fullmatch(customer_id) for customer_id in ids)
    assert tuple(ids) == workspace.customer_ids
    inbox = sorted(path.name for path in (workspace.home / "inbox").iterdir())
    assert inbox
    assert set(inbox) <= set(ids)
    for folder in ("archive", "quarantine", "reports", "outbox"):
        assert not any((workspace.home / folder).iterdir())
    assert not (workspace.home / "config" / "catalog.csv").exists()


def test_refuses_a_workspace_that_already_has_contracts(tmp_path):
    contracts = tmp_path / "config" / "contracts.yaml"
    contracts.parent.mkdir(parents=True)
    contracts.write_text("customers: []\n", encoding="utf-8")

    with pytest.raises(FileExistsError):
        build_demo_workspace(tmp_path, "2026-10")
    assert contracts.read_text(encoding="utf-8") == "customers: []\n"
    assert not (tmp_path / "inbox").exists()
