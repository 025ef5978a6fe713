"""A damaged or truncated warehouse.duckdb: one sentence saying how to rebuild it; `rebuild`
re-creates it from archive/ with the same results, keeps the old file, and the next run sends
nothing twice."""

import pytest
from harness import MONTH, copy_workspace, fingerprint, polyrecon, polyrecon_here

RUN = ("run", "--month", MONTH)


def _zero(data):
    return b""


def _garbage(data):
    return bytes((i * 7919) % 251 for i in range(len(data)))


def _truncated(data):
    return data[:100]


def _blocks_overwritten(data):
    return data[:8192] + bytes((i * 31) % 256 for i in range(len(data) - 8192))


DAMAGE = [("empty (0 bytes)", _zero), ("overwritten with garbage", _garbage),
          ("truncated to 100 bytes", _truncated),
          ("data blocks overwritten (checksums fail)", _blocks_overwritten)]


@pytest.fixture(scope="module")
def finished(clean_run):
    home, clean, _ = clean_run
    return home, clean


@pytest.mark.parametrize(("label", "damage"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_warehouse_says_how_to_rebuild(finished, tmp_path, reliability, label, damage):
    home = copy_workspace(finished[0], tmp_path / "ws")
    warehouse = home / "warehouse.duckdb"
    warehouse.write_bytes(damage(warehouse.read_bytes()))
    damaged = warehouse.read_bytes()
    for args in (RUN, ("status",)):
        done = polyrecon(home, *args)
        assert done.returncode == 1
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"the warehouse {warehouse} is damaged"), done.stderr[-2000:]
        assert f"python -m pipelines rebuild --home {home}" in last
        assert "Traceback" not in done.stderr
    assert warehouse.read_bytes() == damaged  # left as it was for the rebuild to keep
    reliability(f"warehouse.duckdb {label}", "warehouse",
                "exit 1 with one sentence naming `python -m pipelines rebuild`; the file was "
                "left as it was")


@pytest.mark.parametrize("readable", [False, True], ids=["damaged", "readable"])
def test_rebuild_gives_the_same_results_and_the_next_run_sends_nothing(
        finished, tmp_path, reliability, readable):
    home = copy_workspace(finished[0], tmp_path / "ws")
    clean = finished[1]
    warehouse = home / "warehouse.duckdb"
    old = warehouse.read_bytes()
    if not readable:
        warehouse.write_bytes(_garbage(old))
    kept_before = warehouse.read_bytes()
    done = polyrecon(home, "rebuild")
    assert done.returncode == 0, done.stderr[-3000:]
    [kept] = home.glob("warehouse.duckdb.before-rebuild-*")
    assert kept.read_bytes() == kept_before  # the old file is kept, never deleted
    again = polyrecon_here(home, *RUN)  # what it finds is what is tested, not its process
    assert again.returncode == 0, again.stderr[-2000:]
    assert "E-mail: 0 new, 0 sent" in again.stdout, again.stdout
    found = fingerprint(home)
    for key in clean:
        if key.startswith(("reports/", "archive/", "quarantine/")) or key in (
                "outbox", "inbox left"):
            assert found[key] == clean[key], key
    assert found["snapshots"] == clean["snapshots"]
    if readable:
        assert found["status"] == clean["status"]
        assert "mail ledger copied from the old warehouse" in done.stdout
    else:
        assert "mail ledger rebuilt from outbox/" in done.stdout
    reliability("`rebuild` of a " + ("damaged" if not readable else "readable") + " warehouse",
                "warehouse", "same reconciliation.csv, rma.csv and renewal files from "
                             "archive/; old file kept; the next run sent nothing again")


def test_a_warehouse_of_a_newer_duckdb_says_how_to_make_it_again(finished, tmp_path,
                                                                   reliability):
    """polyrecon before DuckDB 1.5.5 (docs/deploying.md "Versions") wrote its warehouse with
    DuckDB 2.0, which 1.5.5 cannot read: the fixture is a file DuckDB 2.0.1 wrote (`pip install
    duckdb==2.0.1`, then `duckdb.connect(path).execute("CREATE TABLE t (a INT)")`, gzipped):
    its storage header is what 1.5.5 refuses, whatever the tables."""
    import gzip
    from pathlib import Path

    home = copy_workspace(finished[0], tmp_path / "ws")
    warehouse = home / "warehouse.duckdb"
    fixture = Path(__file__).parents[1] / "fixtures" / "warehouse-duckdb-2.0.1.duckdb.gz"
    newer = gzip.decompress(fixture.read_bytes())
    warehouse.write_bytes(newer)
    done = polyrecon(home, "status")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"the warehouse {warehouse} was written by a newer DuckDB"), last
    assert f"python -m pipelines rebuild --home {home}" in last
    assert "Traceback" not in done.stderr
    rebuilt = polyrecon(home, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    [kept] = home.glob("warehouse.duckdb.before-rebuild-*")
    assert kept.read_bytes() == newer
    found = fingerprint(home)
    assert found["snapshots"] == finished[1]["snapshots"]
    reliability("warehouse.duckdb written by DuckDB 2.0", "warehouse",
                "exit 1 naming `python -m pipelines rebuild`; rebuilt from archive/, the old "
                "file kept")
