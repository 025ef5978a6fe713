"""A message's identity in the mail ledger is what it is about, never its wording (issue 27):
rewording every subject and body and sending every sent month again sends nothing, a ledger
keyed by the previous version's wording is re-keyed without sending, and a changed figure is
one new message."""
from __future__ import annotations

import gettext
import os
import pickle
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import duckdb
import pytest
import yaml
from builders import (
    build_once,
    cli,
    contract,
    copy_tree,
    devices,
    drop,
    export_text,
    make_workspace,
    write_yaml,
)

from pipelines.core import i18n
from pipelines.core.config import load_config
from pipelines.core.i18n import Formats
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.delivery import mail, messages
from pipelines.delivery.messages import compose
from pipelines.delivery.rekey import PreviousWords, recomposed
from pipelines.demo.build import build_demo_workspace
from pipelines.jobs.monthly import report, run_month, send
from pipelines.reconciliation.month import stored_month
from pipelines.warehouse.connection import open_warehouse

LAST = "2026-10"


class _Reworded(gettext.NullTranslations):
    """Every sentence of a language said otherwise."""

    def __init__(self, said: gettext.NullTranslations):
        super().__init__()
        self.said = said

    def gettext(self, message):
        return "Reworded: " + self.said.gettext(message)

    def ngettext(self, singular, plural, count):
        return "Reworded: " + self.said.ngettext(singular, plural, count)


@contextmanager
def _reworded(monkeypatch, workspace: Workspace):
    """Every text of every message other than before: each translated sentence (subjects,
    bodies, templates, category and status names), the numbers' format, and the partner's and
    every customer's display name."""
    said = i18n.translations
    partner = yaml.safe_load(workspace.partner_file.read_text(encoding="utf-8")) or {}
    partner.setdefault("partner", {})["name"] = "Renamed Partner AG"
    write_yaml(workspace.partner_file, partner)
    contracts = yaml.safe_load(workspace.contracts_file.read_text(encoding="utf-8"))
    for customer in contracts["customers"]:
        customer["name"] = "The former " + customer["name"]
    write_yaml(workspace.contracts_file, contracts)
    with monkeypatch.context() as patch:
        patch.setattr(i18n, "translations", lambda language: _Reworded(said(language)))
        patch.setattr(Formats, "number",
                      lambda self, value: "–" if value is None else f"{value:_d}")
        patch.setattr(Formats, "decimal",
                      lambda self, value: "–" if value is None else str(value).replace(".", "·"))
        messages._templates.cache_clear()
        try:
            yield
        finally:
            messages._templates.cache_clear()


@contextmanager
def _previous_version(monkeypatch):
    """send_month as polyrecon before issue 27 ran it: every key of the wording (rekey.py's
    formula, which test_the_previous_versions_keys_are_re_keyed_without_sending holds to that
    version's own keys), no key_version, nothing re-keyed."""
    legacy: dict[int, str] = {}

    def compose_then(config, result, rejected=(), uploads=None, sent=(), alerted=None):
        # That version sent every month's RMA alert, `alerted` or not.
        pairs = recomposed(config, result, list(rejected), uploads or {}, sent)
        legacy.update((id(draft), key) for draft, key in pairs)
        return [draft for draft, _ in pairs]

    with monkeypatch.context() as patch:
        patch.setattr(mail, "compose", compose_then)
        patch.setattr(mail, "ledger_key", lambda draft, month: legacy[id(draft)])
        patch.setattr(mail, "KEY_VERSION", None)
        patch.setattr(mail, "rekey_ledger", lambda config, con: None)
        yield


def _reconcile_demo(folder: Path) -> None:
    """The demo's twelve months taken in, reconciled and their reports rendered (a report is
    not sent without its PDF), nothing sent yet; its corrected late exports aside."""
    folder.mkdir(parents=True)
    demo = build_demo_workspace(folder / "ws", LAST)
    config = load_config(Workspace.resolve(demo.home))
    for month in demo.months:
        run_month(config, Month.parse(month), publish=False)
    for month in demo.months:
        report(config, Month.parse(month))
    (folder / "demo.pickle").write_bytes(pickle.dumps(demo))


@pytest.fixture(scope="session")
def reconciled_demo(tmp_path_factory):
    """`_reconcile_demo` made once per session (whichever xdist worker asks first): its
    workspace, never changed by a test (copy it), and the demo's months and late uploads."""
    folder = build_once(tmp_path_factory, "ledger-reconciled-demo", _reconcile_demo)
    return folder / "ws", pickle.loads((folder / "demo.pickle").read_bytes())


def _sent_demo(reconciled_demo, tmp_path) -> tuple[Workspace, list[Month]]:
    """A copy of the demo with every month's messages sent, then the last month's corrected
    exports taken in and what changed sent (a correction, an updated report)."""
    home, demo = reconciled_demo
    workspace = Workspace.resolve(copy_tree(home, tmp_path / "ws"))
    config = load_config(workspace)
    months = [Month.parse(m) for m in demo.months]
    for month in months:
        send(config, month)
    for upload in demo.late_uploads:
        path = workspace.inbox / upload.path
        path.write_bytes(upload.data)
        os.utime(path, (upload.mtime, upload.mtime))
    run_month(config, months[-1], publish=False)
    report(config, months[-1])
    send(config, months[-1])
    return workspace, months


def _ledger(workspace: Workspace) -> list[tuple]:
    with duckdb.connect(str(workspace.warehouse), read_only=True) as con:
        return con.execute("SELECT message_key, kind, customer_id, month, subject, status, "
                           "key_version FROM mail_ledger ORDER BY ALL").fetchall()


def _outbox(workspace: Workspace) -> list[Path]:
    return sorted(workspace.outbox.rglob("*.eml"))


def _send_again(workspace: Workspace, months: list[Month]) -> int:
    config = load_config(workspace)
    return sum(send(config, month).queued for month in months)


def test_rewording_every_message_and_sending_every_month_again_sends_nothing(
        reconciled_demo, tmp_path, monkeypatch):
    workspace, months = _sent_demo(reconciled_demo, tmp_path)
    ledger, outbox = _ledger(workspace), _outbox(workspace)
    assert {line[1] for line in ledger} == {"report", "true_up", "rma", "missing_inventory",
                                            "file_rejected", "correction"}
    with _reworded(monkeypatch, workspace):
        config = load_config(workspace)
        with open_warehouse(workspace, read_only=True) as con:
            drafts = compose(config, stored_month(con, config, months[-1]))
        subjects = {line[4] for line in ledger}
        # reworded, every one
        assert drafts
        assert not {d.subject for d in drafts} & subjects
        assert all(d.subject.startswith("Reworded: [Renamed Partner AG]") for d in drafts)
        assert _send_again(workspace, months) == 0
    assert _ledger(workspace) == ledger
    assert _outbox(workspace) == outbox


def test_a_ledger_of_the_previous_versions_keys_is_re_keyed_without_sending(
        reconciled_demo, tmp_path, monkeypatch):
    with _previous_version(monkeypatch):
        workspace, months = _sent_demo(reconciled_demo, tmp_path)
    before, outbox = _ledger(workspace), _outbox(workspace)
    assert {line[6] for line in before} == {None}
    assert _send_again(workspace, months) == 0
    after = _ledger(workspace)
    assert _outbox(workspace) == outbox
    assert sorted(line[1:6] for line in after) == sorted(line[1:6] for line in before)
    assert None not in {line[6] for line in after}
    # Re-keyed, all but what the last month showed before its late correction: the report and
    # the true-up sent first, and the correction of that true-up (a later one superseded it).
    assert sorted(line[1:4] for line in after if line[6] == 1) == [
        (kind, "rheintal-praezision", LAST) for kind in ("correction", "report", "true_up")]
    with _reworded(monkeypatch, workspace):
        assert _send_again(workspace, months) == 0
    assert _outbox(workspace) == outbox


VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}


def test_a_changed_figure_is_one_new_message_however_it_is_worded(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 4)))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    outbox = _outbox(workspace)
    # The corrected export: 5 devices, still no alert; only the report's figures change.
    drop(workspace, "acme", "lens-2026-03-corrected.csv",
         export_text(devices("Poly Studio X30", 5)))
    with _reworded(monkeypatch, workspace):
        assert cli(workspace, "run", "--month", "2026-03") == 0
        [new] = sorted(set(_outbox(workspace)) - set(outbox))
        assert new.name.startswith("report-acme-")
        assert cli(workspace, "run", "--month", "2026-03") == 0
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert len(_outbox(workspace)) == len(outbox) + 1


# The keys polyrecon gave these messages before issue 27 (commit e33c351, this scenario run
# with it): (kind, month, subject) -> key.
TRUE_UP = "[Partner] True-up Acme GmbH video 2026-03: +2 devices, 300.00 EUR"
REPORT = "[Partner] Poly+ Enterprise report {}: Acme GmbH"
PREVIOUS_KEYS = {
    ("missing_inventory", "2026-02", "[Partner] Missing Lens inventory Acme GmbH 2026-02"):
        "b33581d2412ac248f03a3031a35294beddd35ea623516d2458323a63512ad662",
    ("report", "2026-02", REPORT.format("2026-02")):
        "a9a1ca21c802bc6842f4546bce9ae865574f667b1e86184536df93cad08868f1",
    ("correction", "2026-03", f"[Partner] Correction: {TRUE_UP}"):
        "1b3491e8f6e2101e10ff81bb472fde8623fd9f4bbc774cedf9cc0c1a76918e89",
    ("file_rejected", "2026-03", "[Partner] File rejected for Acme GmbH: broken-2026-03.csv"):
        "0cd7a0326206a4af9ece2dc54c59af42c20e2490a414a6db9f7c4fefc4d61475",
    ("report", "2026-03", REPORT.format("2026-03")):
        "1d6dfa0225b266077f7a6b00bfa579fcba6fc3f54d7ce2ea0a7cb2d6fad56a35",
    ("report", "2026-03", REPORT.format("2026-03") + " (updated: the figures changed)"):
        "d09cbbc0b94ca647c90bca3c739f56f5965ad60fe8ed2045fb487859f92c90ad",
    ("rma", "2026-03", "[Partner] RMA BREACH Acme GmbH 2026: 7.50 % headset RMAs"):
        "10c66a563196ccbec711380a71bde0e54749a4c019c10e288b8386eda1a8dc7c",
    ("true_up", "2026-03", TRUE_UP):
        "8d7f9a6ee0b7ea651f0a110e235effd23ed3b8a2a2cfccd55d29087579111c7b",
}


def test_the_previous_versions_keys_are_re_keyed_without_sending(tmp_path, monkeypatch):
    """Every kind of message, a correction and an updated report among them, in a ledger as
    the previous version wrote it."""
    categories = {"headset": {"ordered_devices": 40, "unit_price_per_year": 12.0},
                  "video": {"ordered_devices": 10, "unit_price_per_year": 180.0},
                  "voice": {"ordered_devices": 5, "unit_price_per_year": 24.0}}
    workspace = make_workspace(tmp_path, [contract("acme", categories=categories)])
    with monkeypatch.context() as patch:  # sent as that version composed and worded them
        patch.setattr(mail, "compose", partial(compose, one_message=False, formats=PreviousWords))
        assert cli(workspace, "run", "--month", "2026-02") == 0  # no inventory: a reminder
        headsets = devices("Poly Voyager Focus 2", 40)
        drop(workspace, "acme", "lens-2026-03.csv",
             export_text(headsets + devices("Poly Studio X30", 12, prefix="V")))
        drop(workspace, "acme", "rma-2026-03.csv", "rma_number,date,serial,model\n" + "".join(
            f"R{i},2026-03-0{1 + i},SN{i:06d},Poly Voyager Focus 2\n" for i in range(3)))
        drop(workspace, "acme", "broken-2026-03.csv", "just,text\n")
        assert cli(workspace, "run", "--month", "2026-03") == 0
        drop(workspace, "acme", "lens-2026-03-corrected.csv",
             export_text(headsets + devices("Poly Studio X30", 10, prefix="V")))
        assert cli(workspace, "run", "--month", "2026-03") == 0
    keyed = {line[1:5]: line[0] for line in _ledger(workspace)}
    lines = {(kind, month, subject) for kind, _, month, subject in keyed}
    assert lines == set(PREVIOUS_KEYS)
    with duckdb.connect(str(workspace.warehouse)) as con:
        for (kind, month, subject), key in PREVIOUS_KEYS.items():
            con.execute("UPDATE mail_ledger SET message_key = ?, key_version = NULL "
                        "WHERE kind = ? AND month = ? AND subject = ?",
                        [key, kind, month, subject])
    outbox = _outbox(workspace)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert cli(workspace, "run", "--month", "2026-02") == 0
    assert _outbox(workspace) == outbox
    after = {(kind, month, subject): (key, version)
             for key, kind, _, month, subject, _, version in _ledger(workspace)}
    # What the months show now has the key a message composed now has; the report and the
    # true-up of 2026-03's first reconciliation keep theirs (their figures are gone), and the
    # correction of that true-up is keyed by the key the true-up kept.
    superseded = {("report", "2026-03", REPORT.format("2026-03")), ("true_up", "2026-03", TRUE_UP)}
    for line, (key, version) in after.items():
        if line in superseded:
            assert (key, version) == (PREVIOUS_KEYS[line], 1)
        elif line[0] == "correction":
            assert version == 2
            assert key != PREVIOUS_KEYS[line]
        else:
            assert (key, version) == (keyed[(line[0], "acme", line[1], line[2])], 2)
    with _reworded(monkeypatch, workspace):
        assert cli(workspace, "run", "--month", "2026-03") == 0
        assert cli(workspace, "run", "--month", "2026-02") == 0
    assert _outbox(workspace) == outbox
