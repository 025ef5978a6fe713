"""A repeated unchanged RMA BREACH is stated in the report, not re-alerted (issue 30): the alert
goes when the rate crosses into another status, or changes by a whole RMA, against the alert
last sent for an earlier month of the year."""
from email import message_from_bytes, policy

from builders import cli, contract, devices, drop, export_text, make_workspace

HEADSETS = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}}


def _month(workspace, month: str, headsets: int, rmas: range = range(0)) -> None:
    """`month`'s Lens export of `headsets` headsets, and an RMA log of the RMAs numbered `rmas`
    (dated in that month), then the monthly run."""
    drop(workspace, "acme", f"lens-{month}.csv",
         export_text(devices("Poly Voyager Focus 2", headsets)))
    if rmas:
        drop(workspace, "acme", f"rma-{month}.csv", "rma_number,date,serial,model\n" + "".join(
            f"R{i},{month}-10,SN{i:06d},Poly Voyager Focus 2\n" for i in rmas))
    assert cli(workspace, "run", "--month", month) == 0


def _sent(workspace, month: str, kind: str) -> list[str]:
    """The plain text of each `kind` message written for `month`."""
    return [message_from_bytes(path.read_bytes(), policy=policy.default)
            .get_body(("plain",)).get_content()
            for path in sorted((workspace.outbox / month).glob(f"{kind}-acme-*.eml"))]


def test_an_unchanged_breach_is_stated_in_the_report_and_one_more_rma_alerts_again(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    _month(workspace, "2026-01", 100, range(6))  # 6 RMAs against 100 headsets: 6.00 % BREACH
    [january] = _sent(workspace, "2026-01", "rma")
    assert "6 headset RMAs in 2026 up to January 2026 against 100 ordered headsets: 6.00 %" \
        in january
    _month(workspace, "2026-02", 100)  # nothing new: 6.00 % BREACH again
    assert _sent(workspace, "2026-02", "rma") == []
    [report] = _sent(workspace, "2026-02", "report")
    assert "Headset RMA rate 6.00 % (" in report
    assert "No new alert: the rate is within one RMA of the alert sent on" in report
    assert cli(workspace, "run", "--month", "2026-02") == 0  # a re-run decides the same
    assert _sent(workspace, "2026-02", "rma") == []
    _month(workspace, "2026-03", 100, range(6, 7))  # one RMA more: 7.00 %
    [march] = _sent(workspace, "2026-03", "rma")
    assert "7 headset RMAs in 2026 up to March 2026 against 100 ordered headsets: 7.00 %" \
        in march


def test_a_larger_base_moving_the_rate_by_less_than_an_rma_sends_nothing_crossing_does(
        tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS)])
    _month(workspace, "2026-01", 100, range(6))  # 6.00 % BREACH: alerted
    assert len(_sent(workspace, "2026-01", "rma")) == 1
    _month(workspace, "2026-02", 110)  # a true-up: 110 ordered from March
    # 6 against 110: 5.45 %, still BREACH, 0.6 of an RMA below the alert's 6.00 %.
    _month(workspace, "2026-03", 110)
    assert [_sent(workspace, month, "rma") for month in ("2026-02", "2026-03")] == [[], []]
    _month(workspace, "2026-04", 121)  # a true-up: 121 ordered from May
    _month(workspace, "2026-05", 121)  # 6 against 121: 4.96 %, crossed down to WATCH
    [may] = _sent(workspace, "2026-05", "rma")
    assert "6 headset RMAs in 2026 up to May 2026 against 121 ordered headsets: 4.96 %" in may


def test_a_new_year_alerts_again(tmp_path):
    term = ("2025-07-01", "2026-06-30")
    workspace = make_workspace(tmp_path, [contract("acme", categories=HEADSETS, term=term)])
    _month(workspace, "2025-12", 100, range(6))
    _month(workspace, "2026-01", 100, range(6, 12))  # 2026's own 6 RMAs: 6.00 % again
    assert len(_sent(workspace, "2026-01", "rma")) == 1
