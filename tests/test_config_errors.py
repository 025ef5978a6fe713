"""Bad configuration exits 2 with one line per problem naming file, customer and key."""
import subprocess
import sys
from pathlib import Path

import pytest
from builders import cli, contract, devices, drop, export_text, make_workspace, write_yaml

from pipelines.core.config import load_config
from pipelines.core.months import Month

ROOT = Path(__file__).resolve().parent.parent


def _broken_contract(**changes):
    entry = contract("acme")
    for dotted, value in changes.items():
        target, *path, last = [entry, *dotted.split(".")]
        for step in path:
            target = target[step]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return entry


CONTRACT_CASES = [
    # (change to the customer entry, words the message must contain)
    (dict(**{"term.end": "2026-02-30"}), ["term.end 2026-02-30 is not a date"]),
    (dict(**{"term.start": "2027-01-01"}), ["term: end 2026-12-31 is before start 2027-01-01"]),
    ({"id": "ACME GmbH"}, ["id", "is not a customer id"]),
    ({"currency": "euro"}, ["currency euro is not a three-letter currency code"]),
    (dict(**{"csm.email": "jana-at-example"}), ["csm.email", "is not an e-mail address"]),
    ({"csm": ...}, ["csm is missing"]),
    ({"categories": {}}, ["categories is empty"]),
    ({"categories": {"audio": {"ordered_devices": 5, "unit_price_per_year": 1.0}}},
     ["categories", "'audio'"]),
    ({"categories": {"video": {"ordered_devices": 0, "unit_price_per_year": 1.0}}},
     ["categories.video.ordered_devices 0 must be at least 1"]),
    ({"categories": {"video": {"ordered_devices": 12.5, "unit_price_per_year": 1.0}}},
     ["categories.video.ordered_devices 12.5 is not a whole number"]),
    ({"categories": {"video": {"ordered_devices": 10, "unit_price_per_year": -1.0}}},
     ["categories.video.unit_price_per_year -1.0 must be at least 0"]),
    ({"categories": {"video": {"ordered_devices": 10, "installed_devices": 9,
                                "growth_rate_pct": 5, "unit_price_per_year": 1.0}}},
     ["categories.video", "not both"]),
    ({"categories": {"voice": {"installed_devices": 9, "unit_price_per_year": 1.0}}},
     ["categories.voice", "installed_devices and growth_rate_pct"]),
    ({"categories": {"video": {"ordered_devices": 10, "unit_price_per_year": 1.234}}},
     ["unit_price_per_year 1.234 has more than two decimal places"]),
    ({"ordred_devices": 5}, ["ordred_devices is not a known key"]),
    ({"csm_has_lens_access": "yes"}, ["csm_has_lens_access yes must be true or false"]),
    ({"first_month": "Oktober"}, ["first_month: Oktober is not a month: write it as YYYY-MM"]),
    ({"first_month": "2027-03"}, ["first_month 2027-03 lies in none of the customer's terms"]),
]


@pytest.mark.parametrize(("changes", "words"), CONTRACT_CASES)
def test_bad_contract_exits_2_naming_file_customer_and_key(tmp_path, capsys, changes, words):
    entry = _broken_contract(**changes)
    workspace = make_workspace(tmp_path, [entry])
    assert cli(workspace, "run", "--month", "2026-03") == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    label = "customer 'acme'" if entry["id"] == "acme" else "customer 'ACME GmbH'"
    assert error.startswith(f"contracts.yaml: {label}: "), error
    for word in words:
        assert word in error, error
    assert "(line " in error


@pytest.mark.parametrize(("policy", "words"), [
    ({"proration_start": "first_of_year"}, ["policy.proration_start first_of_year must be",
                                           "'report_month' or 'next_month'"]),
    ({"true_up_trigger_pct": 0}, ["policy.true_up_trigger_pct 0 must be more than 0"]),
    ({"baseline_buffer_pct": "2,5"}, ["policy.baseline_buffer_pct 2,5 has a decimal comma",
                                      "write 2.5"]),
    ({"baseline_buffer_pct": "five"}, ["policy.baseline_buffer_pct five is not a number"]),
    # rules.md "Devices not seen" (2026-12-04)
    ({"not_seen_days": 0}, ["policy.not_seen_days 0 must be at least 1"]),
    ({"not_seen_days": "90 days"}, ["policy.not_seen_days 90 days is not a whole number"]),
    ({"not_seen_days": 10**30}, ["policy.not_seen_days", "must be at most 3650"]),
    ({"not_seen": "ignore"}, ["policy.not_seen: ignore must be 'count', 'flag' or 'exclude'",
                              "one per category (e.g. {headset: count, video: flag})"]),
    ({"not_seen": {"headset": "drop"}}, ["policy.not_seen.headset drop must be 'count', "
                                         "'flag' or 'exclude'"]),
    ({"not_seen": {"audio": "flag"}}, ["policy.not_seen: 'audio' is not allowed here",
                                       "'headset', 'video' or 'voice'"]),
])
def test_bad_policy_exits_2(tmp_path, capsys, policy, words):
    workspace = make_workspace(tmp_path, [contract("acme")], policy)
    assert cli(workspace, "reconcile", "--month", "2026-03") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("partner.yaml: ")
    assert len(error.splitlines()) == 1
    for word in words:
        assert word in error, error


def test_secret_in_partner_file_is_refused(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    write_yaml(workspace.partner_file, {"lens": {"client_secret": "s3cr3t-value"}})
    assert cli(workspace, "ingest") == 2
    error = capsys.readouterr().err
    assert "lens.client_secret: secrets do not belong in this file" in error
    assert "s3cr3t-value" not in error


@pytest.mark.parametrize(("catalog", "words"), [
    ("host=db.partner.example dbname=lake password=S3cretPW", "holds a password"),
    ("postgres:host=db.partner.example dbname=lake sslpassword=S3cretPW", "holds a password"),
    ("postgresql://polyrecon:S3cretPW@db.partner.example:5432/lake", "holds a password"),
    ("host=db.partner.example dbname='lake S3cretPW", "is not a libpq connection string"),
])
def test_a_catalog_password_in_any_form_is_refused_and_never_repeated(tmp_path, capsys,
                                                                     reliability, catalog,
                                                                     words):
    """Issue 29, 4: a password as a URI's user:password@ or as sslpassword= passed the check,
    and the catalog string was printed whole in error lines (and so in Airflow's logs)."""
    workspace = make_workspace(tmp_path, [contract("acme")])
    write_yaml(workspace.partner_file, {"warehouse": {"ducklake": {
        "catalog": catalog, "data_path": str(tmp_path / "lake")}}})
    assert cli(workspace, "status") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("partner.yaml: warehouse.ducklake.catalog: ")
    assert words in error
    assert "S3cretPW" not in error
    assert "\n" not in error
    reliability(f"partner.yaml: a DuckLake catalog `{catalog.replace('S3cretPW', '…')}`",
                "configuration", f"exit 2, one line: “{words}”; the string is not repeated, "
                "the password in no output")


@pytest.mark.parametrize(("figure", "value", "words"), [
    ("ordered_devices", 1_000_000_000_000_000,
     "categories.video.ordered_devices 1000000000000000 must be at most 10000000"),
    ("unit_price_per_year", 1e21, "must be at most 1000000"),
])
def test_figures_the_warehouse_cannot_hold_are_refused_in_one_line(
        tmp_path, capsys, reliability, figure, value, words):
    """Issue 29, 8: figures the warehouse cannot hold passed validation, then crashed every
    customer's reconciliation with a DuckDB conversion traceback."""
    figures = {"ordered_devices": 10, "unit_price_per_year": 1.0, figure: value}
    workspace = make_workspace(tmp_path, [_broken_contract(categories={"video": figures})])
    upload = drop(workspace, "acme", "lens-2026-03.csv",
                  export_text(devices("Poly Studio X30", 3)))
    assert cli(workspace, "run", "--month", "2026-03") == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith("contracts.yaml: customer 'acme': "), error
    assert words in error, error
    assert upload.exists()  # nothing taken in
    reliability(f"contracts.yaml: {figure} {value:.0e}", "configuration",
                "exit 2, one line naming the customer, the key and its bound; nothing taken in")


@pytest.mark.parametrize("catalog", [
    "postgres:host=db.partner.example port=5432 dbname=lake user=polyrecon",
    "postgresql://polyrecon@db.partner.example:5432/lake",
])
def test_a_catalog_uri_keeps_its_scheme(tmp_path, catalog):
    workspace = make_workspace(tmp_path, [contract("acme")])
    write_yaml(workspace.partner_file, {"warehouse": {"ducklake": {
        "catalog": catalog, "data_path": str(tmp_path / "lake")}}})
    lake = load_config(workspace).partner.warehouse.ducklake
    assert lake.catalog == catalog.removeprefix("postgres:")


def test_duplicate_customer_ids(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme"), contract("acme")])
    assert cli(workspace, "ingest") == 2
    assert "customer id 'acme' is used twice" in capsys.readouterr().err


def test_duplicate_yaml_key_names_its_line(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    workspace.partner_file.write_text("policy:\n  true_up_trigger_pct: 5\n"
                                      "  true_up_trigger_pct: 7\n")
    assert cli(workspace, "ingest") == 2
    assert capsys.readouterr().err.strip() == (
        "partner.yaml: line 3: key 'true_up_trigger_pct' appears twice (first on line 2)")


def test_yaml_syntax_error_names_line_and_column(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    workspace.contracts_file.write_text("customers:\n  - id: acme\n    name: [unclosed\n")
    assert cli(workspace, "ingest") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("contracts.yaml: line ")
    assert "not valid YAML" in error


def test_missing_contracts_file(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    workspace.contracts_file.unlink()
    assert cli(workspace, "status") == 2
    assert "contracts.yaml: file not found" in capsys.readouterr().err


def test_ineligible_contract_names_customer_and_categories(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 1.0},
        "voice": {"ordered_devices": 20, "unit_price_per_year": 1.0}})],
        {"eligibility_min_devices": 50})
    assert cli(workspace, "ingest") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("contracts.yaml: customer 'acme': not eligible")
    assert "video (10 ordered)" in error
    assert "voice (20 ordered)" in error


def test_eligible_when_one_category_reaches_the_minimum(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 1.0},
        "voice": {"ordered_devices": 50, "unit_price_per_year": 1.0}})],
        {"eligibility_min_devices": 50})
    assert cli(workspace, "ingest") == 0


def test_bad_catalog_override_names_line_and_column(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    workspace.catalog_file.write_text("model,category,end_of_service\n"
                                      "Studio X30*,video,2026-13-01\n")
    assert cli(workspace, "reconcile", "--month", "2026-03") == 2
    assert capsys.readouterr().err.strip() == (
        "catalog.csv: line 2, column end_of_service: '2026-13-01' is not a date "
        "(YYYY-MM-DD or DD.MM.YYYY, or empty)")


def test_unknown_customer_argument(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    assert cli(workspace, "run", "--month", "2026-03", "--customer", "nobody") == 2
    assert "no customer 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["run"], ["run", "--month", "2026-13"],
                                  ["reconcile", "--month", "March"], ["frobnicate"]])
def test_bad_arguments_exit_2(tmp_path, args):
    with pytest.raises(SystemExit) as stop:
        cli(make_workspace(tmp_path, [contract("acme")]), *args)
    assert stop.value.code == 2


def test_no_traceback_from_the_real_command(tmp_path):
    workspace = make_workspace(tmp_path, [_broken_contract(**{"term.end": "2026-02-30"})])
    done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--month", "2026-03",
                           "--home", str(workspace.home)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("contracts.yaml: customer 'acme': term.end 2026-02-30 is "
                                   "not a date (expected YYYY-MM-DD) (line 15)")
    assert "Traceback" not in done.stderr


# A German partner's contracts.yaml, as typed by someone who writes 180,00 € every day.
GERMAN_CONTRACTS = """\
customers:
  - id: acme
    name: ACME GmbH
    master_account_id: MA-100234
    csm: {name: Jana Beispiel, email: jana@example.com}
    currency: EUR
    term: {start: 2026-01-01, end: 2026-12-31}
    categories:
"""


@pytest.mark.parametrize(("categories", "message"), [
    ("      video:\n        ordered_devices: 10\n        unit_price_per_year: 180,00\n",
     "categories.video.unit_price_per_year 180,00 has a decimal comma: write 180.00 (line 11)"),
    # In a flow mapping YAML reads the comma as the end of an entry: `180` and a key `00`.
    ("      video: {ordered_devices: 10, unit_price_per_year: 180,00}\n",
     "categories.video.unit_price_per_year 180,00 has a decimal comma: write 180.00 (line 9)"),
    ("      voice: {installed_devices: 700, growth_rate_pct: 4,5, unit_price_per_year: 24.00}\n",
     "categories.voice.growth_rate_pct 4,5 has a decimal comma: write 4.5 (line 9)"),
    (("      voice:\n        installed_devices: 700\n        growth_rate_pct: 4,5\n"
      "        unit_price_per_year: 24.00\n"),
     "categories.voice.growth_rate_pct 4,5 has a decimal comma: write 4.5 (line 11)"),
    ("      video: {ordered_devices: 10, unit_price_per_year: 1.234,50}\n",
     "categories.video.unit_price_per_year 1.234,50 has a decimal comma: write 1234.50 (line 9)"),
])
def test_decimal_comma_says_what_to_write(tmp_path, capsys, categories, message):
    workspace = make_workspace(tmp_path, [])
    write_yaml(workspace.partner_file, {"partner": {"name": "Systemhaus", "language": "de"}})
    workspace.contracts_file.write_text(GERMAN_CONTRACTS + categories, encoding="utf-8")
    assert cli(workspace, "run", "--month", "2026-03") == 2
    assert capsys.readouterr().err.strip() == f"contracts.yaml: customer 'acme': {message}"


def test_unknown_customer_language_is_refused(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [])
    workspace.contracts_file.write_text(
        GERMAN_CONTRACTS + "      video: {ordered_devices: 10, unit_price_per_year: 180.00}\n"
        "    language: fr\n", encoding="utf-8")
    assert cli(workspace, "ingest") == 2
    assert capsys.readouterr().err.strip() == (
        "contracts.yaml: customer 'acme': language fr must be 'en' or 'de' (line 10)")


def test_unknown_partner_language_is_refused(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    write_yaml(workspace.partner_file, {"partner": {"language": "deutsch"}})
    assert cli(workspace, "ingest") == 2
    assert capsys.readouterr().err.strip() == (
        "partner.yaml: partner.language deutsch must be 'en' or 'de' (line 2)")


@pytest.mark.parametrize(("partner", "customer", "expected"), [
    ({}, None, "en"),
    ({"language": "de"}, None, "de"),
    ({"language": "de"}, "en", "en"),
    ({}, "de", "de"),
])
def test_a_customer_reads_its_own_language_else_the_partners(tmp_path, partner, customer,
                                                             expected):
    extra = {} if customer is None else {"language": customer}
    workspace = make_workspace(tmp_path, [contract("acme", **extra)])
    write_yaml(workspace.partner_file, {"partner": partner})
    config = load_config(workspace)
    customer_then = config.contracts.in_effect(Month.parse("2026-03"))[0]
    assert config.language_of(customer_then) == expected
    assert config.language_of(config.contracts.get("acme")) == expected
