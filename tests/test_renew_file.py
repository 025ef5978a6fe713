"""`renew` edits contracts.yaml as a partner keeps it (issue 29, finding 11): through a symbolic
link (config from a repository or a mounted secret), and byte for byte outside the appended
term: comments, `null`s, aligned values and the next customer's heading stay where they were."""
import contextlib
import difflib
import subprocess
from pathlib import Path

import pytest
from builders import cli, contract, devices, drop, export_text, make_workspace

from pipelines.core.config import load_config
from pipelines.jobs import renew as renew_module

VIDEO = {"video": {"ordered_devices": 10, "unit_price_per_year": 180.0}}

# As a partner's file looks after a year of hand edits: headings, `null`s, aligned values,
# end-of-line comments and comment lines inside entries. acme's last term ends 2026-03-31.
PARTNER_CONTRACTS = """\
# Poly+ Enterprise contracts, kept by the service desk (ticket SD-4711).
# Terms: one a year; `renew` appends the next one.

customers:
  # --- Customer A ---
  - id: acme                       # inbox folder name
    name: Acme GmbH
    master_account_id: MA-1
    lens_tenant_id: null             # CSV uploads, no Lens API
    csm: {name: Jana Beispiel, email: jana@example.com}
    partner_contacts: [service@partner.example]
    currency: EUR
    terms:
      - term: {start: 2024-04-01, end: 2025-03-31}   # first year
        categories:
          # Studio X30 in the board rooms
          video:   {ordered_devices: 8,  unit_price_per_year: 180.00}
      - term: {start: 2025-04-01, end: 2026-03-31}   # second year, signed 2025-02
        categories:
          # two more rooms in Hamburg
          video:   {ordered_devices: 10, unit_price_per_year: 180.00}
          headset:
            ordered_devices:     40
            unit_price_per_year: 11.00   # list price
          # voice dropped at renewal

  # --- Customer B ---
  - id: bravo
    name: Bravo AG
    master_account_id: MA-2
    lens_tenant_id: null
    csm: {name: Jana Beispiel, email: jana@example.com}
    currency: EUR
    term: {start: 2026-01-01, end: 2026-12-31}
    categories:
      video:   {ordered_devices: 10, unit_price_per_year: 180.00}
      voice:   {ordered_devices: 5,  unit_price_per_year: 24.00}
"""

ONE_TERM_CONTRACTS = """\
customers:
  # --- Customer A ---
  - id: acme                       # inbox folder name
    name: Acme GmbH
    master_account_id: MA-1
    lens_tenant_id: null
    csm: {name: Jana Beispiel, email: jana@example.com}
    currency: EUR
    term: {start: 2025-04-01, end: 2026-03-31}   # first year, signed 2025-02
    categories:                      # video only
      # Studio X30 in the board rooms
      video:   {ordered_devices: 10, unit_price_per_year: 180.00}
  # --- Customer B ---
  - id: bravo
    name: Bravo AG
    master_account_id: MA-2
    lens_tenant_id: null
    csm: {name: Jana Beispiel, email: jana@example.com}
    currency: EUR
    term: {start: 2026-01-01, end: 2026-12-31}
    categories:
      video:   {ordered_devices: 10, unit_price_per_year: 180.00}
"""


def _reconciled(tmp_path, contracts: str):
    """A workspace with `contracts` whose acme term ends 2026-03, that month reconciled: the
    renewal proposal reports/2026-03/renewal-acme.yaml exists (12 video devices counted)."""
    workspace = make_workspace(tmp_path, [contract("acme", categories=VIDEO)])
    workspace.contracts_file.write_text(contracts, encoding="utf-8")
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 12)))
    assert cli(workspace, "ingest", "--month", "2026-03") == 0
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    return workspace


def _proposal_item(workspace) -> list[str]:
    """The proposal's `terms` item: its lines from `- term:` on, without the header."""
    lines = (workspace.home / "reports/2026-03/renewal-acme.yaml").read_text().splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("- ")):]


def _only_inserted(old: str, new: str) -> tuple[int, list[str]]:
    """Where new's lines differ from old's: one block of added lines, nothing else."""
    before, after = old.splitlines(keepends=True), new.splitlines(keepends=True)
    changes = [op for op in difflib.SequenceMatcher(a=before, b=after, autojunk=False)
               .get_opcodes() if op[0] != "equal"]
    assert [op[0] for op in changes] == ["insert"], changes
    _, at, _, start, end = changes[0]
    return at, after[start:end]


@contextlib.contextmanager
def _immutable(folder: Path):
    """The folder and its files made immutable (`chattr +i`): the tests run as root, for whom
    a mode bit stops no write, and a real read-only mount needs privileges a test has not."""
    paths = [folder, *folder.iterdir()]
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_renew_writes_through_a_symlinked_contracts_yaml(tmp_path, capsys, reliability):
    workspace = _reconciled(tmp_path / "home", PARTNER_CONTRACTS)
    repository = tmp_path / "repo"
    repository.mkdir()
    target = repository / "contracts.yaml"
    target.write_text(PARTNER_CONTRACTS, encoding="utf-8")
    target.chmod(0o640)
    workspace.contracts_file.unlink()
    workspace.contracts_file.symlink_to("../../repo/contracts.yaml")
    assert workspace.contracts_file.read_text() == PARTNER_CONTRACTS

    assert cli(workspace, "renew", "--customer", "acme") == 0
    assert "term 2026-04-01..2027-03-31 added" in capsys.readouterr().out
    assert workspace.contracts_file.is_symlink()
    assert str(workspace.contracts_file.readlink()) == "../../repo/contracts.yaml"
    assert "2026-04-01" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o640  # the file's mode, not a new file's
    terms = load_config(workspace).contracts.get("acme").all_terms
    assert [str(t.term.start) for t in terms] == ["2024-04-01", "2025-04-01", "2026-04-01"]
    assert terms[-1].categories["video"].ordered == 12
    kept = workspace.config_dir / "contracts.before-renew-acme-2026-04-01.yaml"
    assert not kept.is_symlink()
    assert kept.read_text() == PARTNER_CONTRACTS
    assert sorted(p.name for p in repository.iterdir()) == ["contracts.yaml"]  # no leftovers
    reliability("`renew` with config/contracts.yaml a symbolic link (a repository checkout, a "
                "mounted secret)", "renew",
                "the link's target gets the new term, written atomically; the link stays a "
                "link; the file before is kept in config/ (the finding: the link was replaced "
                "by a plain file, the real file never got the term)")


def test_renew_refuses_in_one_line_when_the_links_target_cannot_be_written(
        tmp_path, capsys, reliability):
    workspace = _reconciled(tmp_path / "home", PARTNER_CONTRACTS)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "contracts.yaml").write_text(PARTNER_CONTRACTS, encoding="utf-8")
    workspace.contracts_file.unlink()
    workspace.contracts_file.symlink_to(secret / "contracts.yaml")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    with _immutable(secret):  # as a read-only mount: no new file, root's writes included
        assert cli(workspace, "renew", "--customer", "acme") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"(a link to {secret / 'contracts.yaml'}) cannot be written (" in line  # and why
    assert line.endswith("nothing was changed; add the proposal reports/2026-03/renewal-acme.yaml "
                         "to acme's `terms` there yourself, or make it writable and run renew "
                         "again")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (secret / "contracts.yaml").read_text() == PARTNER_CONTRACTS
    assert workspace.contracts_file.is_symlink()
    reliability("`renew` with config/contracts.yaml a link to a file it cannot write (a "
                "read-only mount)", "renew",
                "refused in one line naming the file and what to do; nothing written, the "
                "link and its target as they were")


@pytest.mark.parametrize(("newline", "bom"), [("\n", b""), ("\r\n", b"\xef\xbb\xbf")],
                         ids=["lf", "crlf-bom"])
def test_renew_adds_the_term_and_changes_no_other_byte(tmp_path, capsys, reliability,
                                                        newline, bom):
    old = bom + PARTNER_CONTRACTS.replace("\n", newline).encode()
    workspace = _reconciled(tmp_path, PARTNER_CONTRACTS)
    workspace.contracts_file.write_bytes(old)

    assert cli(workspace, "renew", "--customer", "acme") == 0
    new = workspace.contracts_file.read_bytes()
    assert new.startswith(bom)
    assert new[len(bom):len(bom) + 1] == b"#"  # one byte order mark, as before
    at, added = _only_inserted(old.decode("utf-8-sig"), new.decode("utf-8-sig"))
    old_lines = PARTNER_CONTRACTS.splitlines()
    # After acme's last line, before the blank line and Customer B's heading.
    assert old_lines[at - 1] == "          # voice dropped at renewal"
    assert old_lines[at:at + 2] == ["", "  # --- Customer B ---"]
    # The proposal's item with its comments, indented as acme's other terms (`- term` at 6).
    assert [line.removesuffix(newline) for line in added] == \
        [f"      {line}" for line in _proposal_item(workspace)]
    assert all(line.endswith(newline) for line in added)
    assert added[0].startswith("      - term: {start: 2026-04-01, end: 2027-03-31}")
    assert (workspace.config_dir / "contracts.before-renew-acme-2026-04-01.yaml").read_bytes() \
        == old
    terms = load_config(workspace).contracts.get("acme").all_terms
    assert [str(t.term.start) for t in terms] == ["2024-04-01", "2025-04-01", "2026-04-01"]
    reliability(f"`renew` of a hand-kept contracts.yaml ({'CRLF, BOM' if bom else 'LF'}: "
                f"headings, `null`s, aligned values, comments in entries)", "renew",
                "only the new term's lines added, inside the renewed entry, indented as its "
                "other terms; every other byte as it was (the finding: `null`s dropped, the next "
                "customer's heading moved into the terms, alignment and indentation changed)")


def test_a_one_term_entry_becomes_terms_and_only_its_lines_change(tmp_path, reliability):
    workspace = _reconciled(tmp_path, ONE_TERM_CONTRACTS)

    assert cli(workspace, "renew", "--customer", "acme") == 0
    item = _proposal_item(workspace)
    assert item[0] == "- term: {start: 2026-04-01, end: 2027-03-31}"
    old_block = """\
    term: {start: 2025-04-01, end: 2026-03-31}   # first year, signed 2025-02
    categories:                      # video only
      # Studio X30 in the board rooms
      video:   {ordered_devices: 10, unit_price_per_year: 180.00}
"""
    new_block = """\
    terms:
      - term: {start: 2025-04-01, end: 2026-03-31}   # first year, signed 2025-02
        categories:                      # video only
          # Studio X30 in the board rooms
          video:   {ordered_devices: 10, unit_price_per_year: 180.00}
""" + "".join(f"      {line}\n" for line in item)
    assert ONE_TERM_CONTRACTS.count(old_block) == 1
    assert workspace.contracts_file.read_text() == ONE_TERM_CONTRACTS.replace(old_block,
                                                                              new_block)
    terms = load_config(workspace).contracts.get("acme").all_terms
    assert [str(t.term.start) for t in terms] == ["2025-04-01", "2026-04-01"]
    reliability("`renew` of a one-term entry (`term` + `categories`) in a hand-kept "
                "contracts.yaml", "renew",
                "the entry becomes `terms` with its term first and the new one after; only "
                "that customer's term lines change, every other byte as it was")


# The text surgery itself, on shapes the CLI tests above do not write.

PROPOSAL = """\
# Renewal proposal for Acme GmbH (acme): the term after 2025-04-01 .. 2026-03-31.
- term: {start: 2026-04-01, end: 2027-03-31}
  categories:
    # 12 devices counted in 2026-03; 10 ordered in effect
    video: {ordered_devices: 12, unit_price_per_year: 180.00}
"""


def test_flow_style_terms_get_a_flow_item():
    text = ("customers:\n- {id: acme, terms: [{term: {start: 2025-04-01, end: 2026-03-31},\n"
            "    categories: {video: {ordered_devices: 10, unit_price_per_year: 180.00}}}]}\n"
            "# the end\n")
    new = renew_module._appended(text, "acme", PROPOSAL)
    assert new == text.replace("180.00}}}]}", "180.00}}}, {term: {start: 2026-04-01, end: "
                               "2027-03-31}, categories: {video: {ordered_devices: 12, "
                               "unit_price_per_year: 180.00}}}]}")


def test_a_flow_style_one_term_entry_becomes_flow_terms():
    text = "customers:\n  - {id: acme, term: {start: 2025-04-01, end: 2026-03-31}, " \
           "currency: EUR, categories: {video: {ordered_devices: 10}}}  # x\n"
    new = renew_module._appended(text, "acme", PROPOSAL)
    assert new == "customers:\n  - {id: acme, terms: [{term: {start: 2025-04-01, end: " \
        "2026-03-31}, categories: {video: {ordered_devices: 10}}}, {term: {start: 2026-04-01, " \
        "end: 2027-03-31}, categories: {video: {ordered_devices: 12, unit_price_per_year: " \
        "180.00}}}], currency: EUR}  # x\n"


def test_a_file_without_a_final_newline_and_a_four_space_indentation():
    text = ("customers:\n"
            "    -   id: acme\n"
            "        terms:\n"
            "        -   term: {start: 2025-04-01, end: 2026-03-31}\n"
            "            categories:\n"
            "                video: {ordered_devices: 10, unit_price_per_year: 180.00}")
    new = renew_module._appended(text, "acme", PROPOSAL)
    assert new == text + (
        "\n        -   term: {start: 2026-04-01, end: 2027-03-31}\n"
        "            categories:\n"
        "                # 12 devices counted in 2026-03; 10 ordered in effect\n"
        "                video: {ordered_devices: 12, unit_price_per_year: 180.00}")


def test_a_one_term_entry_with_a_key_between_term_and_categories():
    text = ("customers:\n"
            "  - id: acme\n"
            "    term: {start: 2025-04-01, end: 2026-03-31}\n"
            "    currency: EUR   # euro\n"
            "    # prices of the 2025 quote\n"
            "    categories:\n"
            "      video: {ordered_devices: 10, unit_price_per_year: 180.00}\n"
            "  - id: bravo\n")
    new = renew_module._appended(text, "acme", PROPOSAL)
    assert new == ("customers:\n"
                   "  - id: acme\n"
                   "    terms:\n"
                   "      - term: {start: 2025-04-01, end: 2026-03-31}\n"
                   "        # prices of the 2025 quote\n"
                   "        categories:\n"
                   "          video: {ordered_devices: 10, unit_price_per_year: 180.00}\n"
                   "      - term: {start: 2026-04-01, end: 2027-03-31}\n"
                   "        categories:\n"
                   "          # 12 devices counted in 2026-03; 10 ordered in effect\n"
                   "          video: {ordered_devices: 12, unit_price_per_year: 180.00}\n"
                   "    currency: EUR   # euro\n"
                   "  - id: bravo\n")


def test_a_proposal_rewritten_in_block_style_is_indented_level_by_level():
    text = ("customers:\r\n"
            "  - id: acme\r\n"
            "    terms:\r\n"
            "      - term: {start: 2025-04-01, end: 2026-03-31}\r\n"
            "        categories:\r\n"
            "          video:\r\n"
            "              ordered_devices:     10\r\n"
            "              unit_price_per_year: 180.00\r\n"
            "\r\n"
            "  - id: bravo\r\n")
    proposal = ("- term:\n    start: 2026-04-01\n    end: 2027-03-31\n  categories:\n"
                "    video:\n      # corrected by hand\n      ordered_devices: 14\n"
                "      unit_price_per_year: 175.00\n")
    new = renew_module._appended(text, "acme", proposal)
    assert new == text.replace("180.00\r\n\r\n", (
        "180.00\r\n"
        "      - term:\r\n"
        "          start: 2026-04-01\r\n"
        "          end: 2027-03-31\r\n"
        "        categories:\r\n"
        "          video:\r\n"
        "              # corrected by hand\r\n"
        "              ordered_devices: 14\r\n"
        "              unit_price_per_year: 175.00\r\n"
        "\r\n"))
