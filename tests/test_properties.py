"""Property tests of the rules: repeatable, order-free, latest snapshot wins, row-order-free."""
import tempfile
from pathlib import Path

from builders import cli, contract, copy_tree, drop, export_text, make_workspace, reconciliation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.workspace import Workspace

MODELS = ["Poly Studio X30", "Polycom VVX 450", "Poly Voyager Focus 2 Series",
          "Polycom SoundPoint IP 501", "Poly RealPresence DMA 7000", "Mystery Box 9",
          "Poly Sync 20-M"]
CATEGORIES = {"headset": {"ordered_devices": 20, "unit_price_per_year": 12.0},
              "video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}
MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]
SLOW = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _reports(workspace) -> dict[str, bytes]:
    root = workspace.home / "reports"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _fleet(counts: dict[str, int]) -> list[dict]:
    rows = []
    for model, count in counts.items():
        rows += [{"serial_number": f"{model[-4:]}-{i}", "device_model": model}
                 for i in range(count)]
    return rows


monthly_fleets = st.lists(st.one_of(st.none(), st.dictionaries(
    st.sampled_from(MODELS), st.integers(0, 25), min_size=1)), min_size=6, max_size=6)


@SLOW
@given(fleets=monthly_fleets, order=st.permutations(MONTHS))
def test_months_in_any_order_and_reruns_give_identical_files(fleets, order):
    with tempfile.TemporaryDirectory() as root:
        one = make_workspace(Path(root) / "one", [contract(
            "acme", categories=CATEGORIES, term=("2026-01-01", "2026-06-30"))])
        for month, fleet in zip(MONTHS, fleets, strict=False):
            if fleet is not None:
                drop(one, "acme", f"lens-{month}.csv", export_text(_fleet(fleet)))
        assert cli(one, "ingest") == 0
        # The second workspace is a copy of the first as ingested (one ingest, not two): what
        # differs between them is the order of the months alone.
        two = Workspace.resolve(copy_tree(one.home, Path(root) / "two"))
        results = []
        for workspace, sequence in ((one, MONTHS), (two, order)):
            for month in sequence:
                assert cli(workspace, "reconcile", "--month", month) == 0
            first = _reports(workspace)
            for month in reversed(sequence):  # re-run everything: byte-identical
                assert cli(workspace, "reconcile", "--month", month) == 0
            assert _reports(workspace) == first
            results.append(first)
        assert results[0] == results[1]
        assert "2026-06/renewal-acme.yaml" in results[0]


@SLOW
@given(counts=st.lists(st.integers(0, 30), min_size=2, max_size=4))
def test_the_latest_snapshot_of_a_month_replaces_earlier_ones(counts):
    with tempfile.TemporaryDirectory() as root:
        workspace = make_workspace(Path(root), [contract("acme", categories=CATEGORIES)])
        for number, count in enumerate(counts):
            drop(workspace, "acme", f"lens-2026-03-v{number}.csv",
                 export_text(_fleet({"Poly Studio X30": count, "Poly Sync 20-M": number})),
                 mtime=1_770_000_000 + number * 3600)
            assert cli(workspace, "ingest") == 0
            assert cli(workspace, "reconcile", "--month", "2026-03") == 0
            rows = {r["category"]: r for r in reconciliation(workspace, "2026-03")}
            assert rows["video"]["devices_counted"] == str(count)
            assert rows["headset"]["devices_counted"] == str(number)


@SLOW
@given(fleet=st.dictionaries(st.sampled_from(MODELS), st.integers(0, 15), min_size=1),
       data=st.data())
def test_counts_do_not_depend_on_row_order_or_repeated_lines(fleet, data):
    rows = _fleet(fleet)
    repeated = data.draw(st.lists(st.sampled_from(rows), max_size=10)) if rows else []
    variants = [{**row, "serial_number": f"  {row['serial_number'].lower()} "}
                for row in repeated]
    shuffled = data.draw(st.permutations(rows + repeated + variants))
    with tempfile.TemporaryDirectory() as root:
        workspace = make_workspace(Path(root), [contract("plain", categories=CATEGORIES),
                                                contract("messy", categories=CATEGORIES)])
        drop(workspace, "plain", "lens-2026-03.csv", export_text(rows))
        drop(workspace, "messy", "lens-2026-03.csv", export_text(shuffled, separator=";"))
        assert cli(workspace, "ingest") == 0
        assert cli(workspace, "reconcile", "--month", "2026-03") == 0
        by_customer = {}
        for row in reconciliation(workspace, "2026-03"):
            by_customer.setdefault(row.pop("customer_id"), []).append(row)
        assert by_customer["plain"] == by_customer["messy"]
