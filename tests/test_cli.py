"""The command line as a partner uses it: init, ingest, status, --customer, exit codes."""
import os
import subprocess
import sys
from pathlib import Path

from builders import cli, contract, devices, drop, export_text, make_workspace

ROOT = Path(__file__).resolve().parent.parent


def test_init_creates_a_workspace_whose_example_config_is_valid(tmp_path, capsys):
    home = tmp_path / "ws"
    assert main_cli("init", "--home", str(home)) == 0
    for folder in ("config", "inbox", "archive", "quarantine", "reports", "outbox"):
        assert (home / folder).is_dir()
    assert "#" in (home / "config/partner.yaml").read_text()
    # The example contract is valid and reconciles (NO_DATA: nothing uploaded yet).
    assert main_cli("run", "--month", "2026-03", "--home", str(home)) == 0
    assert "acme-gmbh,2026-03,video,NO_DATA" in (home / "reports/2026-03/reconciliation.csv"
                                                 ).read_text()
    # A second init keeps what the partner edited.
    (home / "config/contracts.yaml").write_text("customers: []\n")
    assert main_cli("init", "--home", str(home)) == 0
    assert (home / "config/contracts.yaml").read_text() == "customers: []\n"


def main_cli(*args):
    from pipelines.cli import main

    return main(list(args))


def test_home_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYRECON_HOME", str(tmp_path / "from-env"))
    assert main_cli("init") == 0
    assert (tmp_path / "from-env/config/contracts.yaml").exists()


def test_customer_option_takes_in_only_that_inbox(tmp_path):
    video = {"video": {"ordered_devices": 10, "unit_price_per_year": 1.0}}
    workspace = make_workspace(tmp_path, [contract("acme", categories=video),
                                          contract("bolt", categories=video)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 3)))
    drop(workspace, "bolt", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 4)))
    assert cli(workspace, "run", "--month", "2026-03", "--customer", "acme") == 0
    assert (workspace.inbox / "bolt" / "lens-2026-03.csv").exists()
    assert not (workspace.inbox / "acme" / "lens-2026-03.csv").exists()
    text = (workspace.home / "reports/2026-03/reconciliation.csv").read_text()
    assert "acme,2026-03,video,OK,3," in text
    assert "bolt,2026-03,video,NO_DATA" in text
    # Reports and e-mails: that customer's only.
    reports = sorted(p.name for p in (workspace.home / "reports/2026-03").glob("*.pdf"))
    assert reports == ["acme.pdf"]
    mails = sorted(p.name.split("-")[1] for p in workspace.outbox.rglob("*.eml"))
    assert mails
    assert set(mails) == {"acme"}


def test_each_command_tells_its_own_time_per_stage(tmp_path, capsys):
    """Commands run one after another in one process (as here, or Airflow's `dags test`): the
    reconcile after an ingest names no validation it never did."""
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 3)))
    assert cli(workspace, "ingest") == 0
    assert "validation" in capsys.readouterr().err.split("Time per stage:")[1]
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    [spent] = [line for line in capsys.readouterr().err.splitlines()
               if line.startswith("Time per stage:")]
    assert "reconcile" in spent
    assert "validation" not in spent


def test_status_lists_data_alerts_and_quarantine(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 180.0}})])
    assert cli(workspace, "status") == 0
    assert "No data yet" in capsys.readouterr().out
    for month, count in (("01", 10), ("02", 10), ("04", 12)):
        drop(workspace, "acme", f"lens-2026-{month}.csv", export_text(devices("Studio X30", count)))
    drop(workspace, "acme", "broken-2026-04.csv", "just,text\n")
    assert cli(workspace, "run", "--month", "2026-04") == 0
    capsys.readouterr()
    assert cli(workspace, "status") == 0
    out = capsys.readouterr().out
    assert "data: 2026-01..2026-02, 2026-04" in out
    assert "2026-04 acme Video True-up: +2 devices, 270.00 EUR, new baseline 12.60" in out
    assert "quarantine/acme/broken-2026-04.csv: no model column" in out


def test_plain_log_lines_without_a_terminal_and_quick_help(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 3)))
    done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--month", "2026-03",
                           "--home", str(workspace.home)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0
    assert "Taking in inbox files: 1/1" in done.stderr
    assert "Reconciling 2026-03: 1/1" in done.stderr
    help_run = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipelines", "--help"],
                              cwd=ROOT, capture_output=True, text=True, check=False)
    assert help_run.returncode == 0
    assert "reconcile" in help_run.stdout
    imported = help_run.stderr
    assert " argparse\n" in imported  # the import log is what we think it is
    for heavy in ("duckdb", "pandas", "pydantic", "great_expectations"):
        assert f" {heavy}\n" not in imported, heavy
        assert f"| {heavy}\n" not in imported, heavy


def test_progress_bar_on_a_terminal(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    for month in ("01", "02", "03"):
        drop(workspace, "acme", f"lens-2026-{month}.csv", export_text(devices("Studio X30", 2)))
    reader, writer = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "pipelines", "ingest", "--home",
                                str(workspace.home)], cwd=ROOT, stderr=writer,
                               stdout=subprocess.DEVNULL,
                               env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    os.close(writer)
    shown = b""
    while True:  # read while it runs: a full terminal buffer would block it
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=60) == 0
    assert b"Taking in inbox files" in shown
    assert b"Taking in inbox files: 3/3" not in shown  # the bar, not the plain log lines
