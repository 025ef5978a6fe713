"""Hostile inputs through the real CLI: every upload of the hostile corpus ends in exactly one
place byte for byte, a second run changes nothing; formula cells are neutralised in every CSV
we write; files holding CSM addresses are the owner's only."""
import csv
import hashlib
import os
import pickle
import stat
from pathlib import Path

import pytest
from builders import build_once, contract, make_workspace
from harness import polyrecon
from test_hostile_inbox import CORPUS, content

from pipelines.core.safe_csv import neutralise

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+2", "-3+4", "@SUM(A1:A9)",
            "\tTAB", "\rCR"]


def _formula_upload() -> bytes:
    rows = [["serial_number", "device_model", "site_name"], ["F0", "Poly Studio X30", "ok"]]
    rows += [[value, "", value] for value in FORMULAS]  # no model: listed as rejected
    with_quotes = []
    for row in rows:
        with_quotes.append(",".join('"' + cell.replace('"', '""') + '"' for cell in row))
    return ("\n".join(with_quotes) + "\n").encode()


def _where(home, data: bytes) -> list[str]:
    digest = hashlib.sha256(data).hexdigest()
    return [p.relative_to(home).as_posix() for p in home.rglob("*")
            if p.is_file() and not p.name.endswith((".reason.txt", ".rejected.csv"))
            and p.suffix != ".duckdb" and "reports" not in p.parts and "outbox" not in p.parts
            and hashlib.sha256(p.read_bytes()).hexdigest() == digest]


def _hostile_runs(folder: Path) -> None:
    """The hostile corpus in a workspace's inbox, run twice; both runs pickled beside it."""
    home = folder / "ws"
    workspace = make_workspace(home, [contract("acme")])
    inbox = workspace.inbox / "acme"
    inbox.mkdir(parents=True)
    for name in CORPUS:
        (inbox / name).write_bytes(content(name))
    (inbox / "formulas-2026-03.csv").write_bytes(_formula_upload())
    first = polyrecon(home, "run", "--month", "2026-03")
    results = (home / "reports/2026-03/reconciliation.csv").read_bytes()
    second = polyrecon(home, "run", "--month", "2026-03")
    (folder / "runs.pickle").write_bytes(pickle.dumps((first, second, results)))


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """The two runs of the hostile corpus, made once per session (whichever xdist worker asks
    first): the workspace they left, never changed by a test, and what they did."""
    folder = build_once(tmp_path_factory, "security-hostile", _hostile_runs)
    first, second, results = pickle.loads((folder / "runs.pickle").read_bytes())
    return folder / "ws", first, second, results


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_hostile_upload_is_in_one_place_and_a_rerun_changes_nothing(hostile, reliability,
                                                                        name):
    home, first, second, results = hostile
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Traceback" not in first.stderr + second.stderr
    _, (outcome, expected) = CORPUS[name]
    places = _where(home, content(name))
    assert len(places) >= 1
    folder = "archive/acme/" if outcome == "loaded" else "quarantine/acme/"
    mine = [p for p in places if p.startswith(folder) and p.rsplit("/", 1)[-1].startswith(
        name.rsplit(".", 1)[0])]
    assert len(mine) == 1, places
    assert not any(p.startswith("inbox/") for p in places)
    assert (home / "reports/2026-03/reconciliation.csv").read_bytes() == results
    assert "Inbox: no new files" in second.stdout
    assert "E-mail: 0 new" in second.stdout
    what = f"loaded, {expected} devices" if outcome == "loaded" and expected is not None \
        else "loaded" if outcome == "loaded" else f"quarantined: {expected}"
    reliability(f"upload `{name}`", "inbox", what + "; kept byte for byte; a second run "
                                                   "changed nothing")


def test_formula_cells_are_neutralised_in_rejected_rows(hostile, reliability):
    home, *_ = hostile
    [rejected] = (home / "quarantine/acme").glob("formulas-2026-03*.rejected.csv")
    with rejected.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The reader trims white space, so a leading tab or CR does not survive to the file; the
    # rule covers them for any value that keeps them.
    expected = ["'" + v if v[0] in "=+-@" else v.strip() for v in FORMULAS]
    assert [row["serial"] for row in rows] == expected
    assert [row["site"] for row in rows] == expected
    assert all(row["row"].isdigit() for row in rows)
    assert [neutralise(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    reliability("cells starting with =, +, -, @, tab or CR in an upload", "rejected rows CSV",
                "written with a leading ' (text in a spreadsheet); the row numbers stay "
                "numbers")


def test_our_negative_numbers_stay_numbers(clean_run):
    home, *_ = clean_run
    text = (home / "reports/2026-10/reconciliation.csv").read_text()
    # e.g. growth_pct -17.50
    assert ",-" in text
    assert ",'-" not in text


def test_files_with_csm_addresses_are_the_owners_only(tmp_path, clean_run, reliability):
    assert polyrecon(tmp_path / "new", "init").returncode == 0
    assert stat.S_IMODE(os.stat(tmp_path / "new/config/contracts.yaml").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "new/config").st_mode) == 0o700
    home, *_ = clean_run
    checked = [home / "warehouse.duckdb", *(home / "outbox").rglob("*")]
    assert len(checked) > 3
    for path in checked:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    reliability("other users on the machine", "workspace files",
                "contracts.yaml, warehouse, outbox e-mails created owner-only (0600, folders "
                "0700)")
