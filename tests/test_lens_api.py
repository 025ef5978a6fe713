"""Lens API pulls against a real HTTP fake on loopback: complete under every fault, or nothing."""
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
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
from fake_lens import FakeLens, Faults, expected_counts

from pipelines.core.config import load_config
from pipelines.core.months import Month
from pipelines.lens_api.client import LensCredentials, RetryPolicy
from pipelines.lens_api.pull import pull_lens, pull_window_open

ROOT = Path(__file__).resolve().parent.parent
FAST = RetryPolicy(first_wait=0.01, longest_wait=0.05, connect_timeout=2, read_timeout=5)
ALL = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0},
       "video": {"ordered_devices": 100, "unit_price_per_year": 180.0},
       "voice": {"ordered_devices": 100, "unit_price_per_year": 24.0}}
NOVEMBER = Month(2026, 11)
TODAY = date(2026, 11, 24)


def _workspace(tmp_path, fake: FakeLens, tenants: dict[str, str], page_size=1000):
    workspace = make_workspace(tmp_path, [contract(customer_id, categories=ALL,
                                                   lens_tenant_id=tenant)
                                          for customer_id, tenant in tenants.items()])
    write_yaml(workspace.partner_file, {"lens": {"token_url": fake.token_url,
                                                 "graphql_url": fake.graphql_url,
                                                 "page_size": page_size}})
    return workspace


def _credentials(fake: FakeLens) -> LensCredentials:
    return LensCredentials(fake.client_id, fake.client_secret)


def _pull(workspace, fake, **kwargs):
    return pull_lens(load_config(workspace), NOVEMBER, credentials=_credentials(fake),
                     today=TODAY, retry=FAST, **kwargs)


def _stored(workspace) -> tuple[int, int]:
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    try:
        return (con.execute("SELECT count(*) FROM snapshots").fetchone()[0],
                con.execute("SELECT count(*) FROM raw_inventory").fetchone()[0])
    finally:
        con.close()


TRANSIENT = {
    "token endpoint 503": Faults(token_503=2),
    "401 after expiry": Faults(expire_tokens=2, at_request=5),
    "400 rate limit exceeded": Faults(rate_limit_400=2),
    "429 with Retry-After": Faults(rate_limit_429=1, retry_after="0.2"),
    "502": Faults(bad_gateway_502=2),
    "dropped connection mid-page": Faults(drop_connection=1, at_request=10),
}


@pytest.mark.parametrize("fault", list(TRANSIENT), ids=list(TRANSIENT))
def test_25000_devices_arrive_complete_despite_the_fault(tmp_path, fault):
    with FakeLens({"t-acme": 25_000}, faults=TRANSIENT[fault]) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        [result] = _pull(workspace, fake)
        assert (result.outcome, result.devices) == ("loaded", 25_000), result.detail
        assert fake.page_sizes[:2] == [1000, 1000]
        armed = TRANSIENT[fault]
        assert all(getattr(fake.faults, name) == 0 for name in (
            "token_503", "expire_tokens", "rate_limit_400", "rate_limit_429",
            "bad_gateway_502", "drop_connection")), "the fault never fired"
        if armed.expire_tokens:
            assert len(fake.issued_tokens) >= 2  # renewed after the 401
    assert _stored(workspace) == (1, 25_000)
    assert cli(workspace, "reconcile", "--month", "2026-11") == 0
    rows = reconciliation(workspace, "2026-11")
    for category, count in expected_counts(25_000).items():
        assert row_for(rows, "acme", category)["devices_counted"] == str(count)


PERMANENT = {
    "hasNextPage with an empty nextToken": (Faults(empty_next_token=True),
                                            "gave no nextToken"),
    "totalCount disagrees with the rows": (Faults(total_count_offset=3),
                                           ("received 2500 devices but Lens reported a "
                                           "totalCount of 2503")),
}


@pytest.mark.parametrize("fault", list(PERMANENT), ids=list(PERMANENT))
def test_a_pull_that_cannot_complete_changes_nothing(tmp_path, fault):
    faults, message = PERMANENT[fault]
    with FakeLens({"t-acme": 2_500}, faults=faults) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"}, page_size=500)
        drop(workspace, "acme", "lens-2026-11.csv", export_text(devices("Poly Studio X30", 7)))
        assert cli(workspace, "ingest", "--month", "2026-10") == 0  # only the inbox
        before = _stored(workspace)
        [result] = _pull(workspace, fake)
    assert result.outcome == "failed"
    assert message in result.detail
    assert _stored(workspace) == before == (1, 7)
    assert cli(workspace, "reconcile", "--month", "2026-11") == 0
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "video")["devices_counted"] == "7"


def test_unknown_tenant_is_named_and_other_customers_are_right(tmp_path, monkeypatch, capsys):
    with FakeLens({"t-acme": 1_200, "t-bolt": 800}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme", "bolt": "t-bolt",
                                                "ghost": "t-nowhere"}, page_size=250)
        monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
        code = cli(workspace, "run", "--month", str(Month.of(date.today())))
    captured = capsys.readouterr()
    assert code == 1
    assert "Lens API ghost (tenant t-nowhere): pull failed, nothing stored" in captured.out
    assert "Tenant t-nowhere not found" in captured.out
    assert "1 Lens API pull failed; its customer keeps" in captured.err
    rows = reconciliation(workspace, str(Month.of(date.today())))
    for customer_id, total in (("acme", 1_200), ("bolt", 800)):
        for category, count in expected_counts(total).items():
            assert row_for(rows, customer_id, category)["devices_counted"] == str(count)
    assert row_for(rows, "ghost", "video")["status"] == "NO_DATA"
    assert cli(workspace, "status") == 0
    assert "ghost (tenant t-nowhere): Lens answered with an error: Tenant t-nowhere not found" \
        in capsys.readouterr().out


def test_pull_window(tmp_path):
    assert pull_window_open(Month(2026, 10), date(2026, 10, 1), 10)
    assert pull_window_open(Month(2026, 10), date(2026, 11, 10), 10)
    assert not pull_window_open(Month(2026, 10), date(2026, 11, 11), 10)
    assert not pull_window_open(Month(2026, 12), date(2026, 11, 24), 10)
    with FakeLens({"t-acme": 10}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        assert pull_lens(load_config(workspace), Month(2026, 9), credentials=_credentials(fake),
                         today=TODAY) == []
        assert fake.graphql_requests == 0
        assert fake.token_requests == 0


def test_re_running_an_old_month_pulls_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    with FakeLens({"t-acme": 10}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
        assert cli(workspace, "run", "--month", "2026-01") == 0
        assert fake.graphql_requests == 0
    said = capsys.readouterr().err
    assert "2026-01 is outside the pull window" in said
    assert "pulling nothing, the stored snapshots stand" in said


def test_missing_credentials_fail_the_pull_not_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LENS_CLIENT_ID", raising=False)
    monkeypatch.delenv("LENS_CLIENT_SECRET", raising=False)
    with FakeLens({"t-acme": 10}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        month = str(Month.of(date.today()))
        assert cli(workspace, "run", "--month", month) == 1
    assert "LENS_CLIENT_ID and LENS_CLIENT_SECRET are not set" in capsys.readouterr().out
    assert (workspace.home / "reports" / month / "reconciliation.csv").exists()


def test_wrong_secret_is_reported_without_retrying(tmp_path):
    with FakeLens({"t-acme": 10}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        [result] = pull_lens(load_config(workspace), NOVEMBER, today=TODAY, retry=FAST,
                             credentials=LensCredentials(fake.client_id, "wrong-secret"))
        assert fake.token_requests == 1
    assert result.outcome == "failed"
    assert "refused the API client credentials" in result.detail
    assert "wrong-secret" not in result.detail


def test_the_pull_is_the_months_snapshot_over_an_earlier_upload(tmp_path, monkeypatch):
    with FakeLens({"t-acme": 30}) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme"})
        month = str(Month.of(date.today()))
        drop(workspace, "acme", f"lens-{month}.csv", export_text(devices("Poly Studio X30", 99)))
        monkeypatch.setenv("LENS_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("LENS_CLIENT_SECRET", fake.client_secret)
        assert cli(workspace, "run", "--month", month) == 0
    video = row_for(reconciliation(workspace, month), "acme", "video")
    assert video["devices_counted"] == str(expected_counts(30)["video"])


def test_no_secret_in_anything_written_or_printed(tmp_path, monkeypatch):
    with FakeLens({"t-acme": 300}, faults=Faults(expire_tokens=1, at_request=2)) as fake:
        workspace = _workspace(tmp_path, fake, {"acme": "t-acme", "ghost": "t-nowhere"},
                               page_size=100)
        env = {"LENS_CLIENT_ID": fake.client_id, "LENS_CLIENT_SECRET": fake.client_secret}
        done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--month",
                               str(Month.of(date.today())), "--home", str(workspace.home)],
                              cwd=ROOT, capture_output=True, env={**__import__("os").environ,
                                                                  **env}, check=False)
        assert done.returncode == 1  # the ghost tenant failed
        secrets = [fake.client_secret.encode(), *(t.encode() for t in fake.issued_tokens)]
    assert len(secrets) >= 3
    written = [p for p in workspace.home.rglob("*") if p.is_file()]
    assert any(p.name == "warehouse.duckdb" for p in written)
    for secret in secrets:
        assert secret not in done.stdout
        assert secret not in done.stderr
        for path in written:
            assert secret not in path.read_bytes(), path
