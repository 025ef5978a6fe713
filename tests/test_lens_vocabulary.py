"""Poly Lens's own vocabulary through the real CLI: its product names, its header labels, its
placeholders, its API's recorded answers (issue 13).

Names come from Lens's product catalog as Lens Desktop ships it, labels from Lens's CSV
import/export docs, the API page from a public client's recorded test data: data/README.md and
fixtures/lens/README.md say where each comes from.
"""
import csv
import json
import re
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
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
from fake_lens import FakeLens, Faults

from pipelines.core.catalog import load_catalog
from pipelines.core.config import load_config
from pipelines.core.months import Month, month_in_name
from pipelines.lens_api.client import LensCredentials, RetryPolicy
from pipelines.lens_api.pull import pull_lens
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import create_schema

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lens"
ALL = {"headset": {"ordered_devices": 100, "unit_price_per_year": 12.0},
       "video": {"ordered_devices": 10, "unit_price_per_year": 180.0},
       "voice": {"ordered_devices": 10, "unit_price_per_year": 24.0}}
FAST = RetryPolicy(first_wait=0.01, longest_wait=0.05, connect_timeout=2, read_timeout=5,
                   budget_pad=0.05)


def _classify(models: list[str]) -> dict[str, str]:
    con = duckdb.connect()
    create_schema(con)
    store_catalog(con, load_catalog(None))
    return {model: con.execute("SELECT coalesce(model_class(normalize_model(?)).category, "
                               "'unclassified')", [model]).fetchone()[0] for model in models}


def _readme_examples() -> list[tuple[str, str]]:
    """The rows of data/README.md's table of examples: `| Lens reports | category | … |`."""
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `?([a-z_]+)`? \|", section, re.MULTILINE)
    assert len(rows) >= 40, "data/README.md lost its table of examples"
    return rows


@pytest.mark.parametrize(("model", "category"), _readme_examples())
def test_every_example_in_data_readme_is_classified_as_written(model, category):
    assert _classify([model]) == {model: category}


def test_data_readme_examples_through_the_cli(tmp_path):
    """All examples in one Lens export, one device each: each category counts its own, the
    not_counted ones get no row and are listed in the report."""
    examples = _readme_examples()
    workspace = make_workspace(tmp_path, [contract("acme", categories=ALL)])
    rows = [{"serial_number": f"EX{i:04d}", "device_model": model, "site_name": "Berlin"}
            for i, (model, _) in enumerate(examples)]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    wanted = {}
    for _model, category in examples:
        if category not in ("not_counted", "quote_only", "unclassified"):
            wanted[category] = wanted.get(category, 0) + 1
    wanted.update(quote_only=sum(c == "quote_only" for _, c in examples),
                  unclassified=sum(c == "unclassified" for _, c in examples))
    found = {r["category"]: int(r["devices_counted"]) + int(r["eol_excluded"] or 0)
             for r in reconciliation(workspace, "2026-03")}
    assert found == wanted
    report = (workspace.home / "reports" / "2026-03" / "acme.html").read_text(encoding="utf-8")
    for model, category in examples:
        if category == "not_counted":
            assert f"<tr><td>{model}</td><td class=\"n\">1</td></tr>" in report


def test_every_product_name_of_lens_catalog_is_classified():
    """The names of Lens's product catalog (data/lens-product-names.txt): none unclassified."""
    names = [line for line in (ROOT / "data" / "lens-product-names.txt").read_text(
        encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert len(names) > 200
    unclassified = [name for name, found in _classify(names).items() if found == "unclassified"]
    assert unclassified == []


# A Lens export in the import/export template's shape (Lens docs: the reserved columns
# mac_address, serial_number, device_model, lens_device_id, room_name, site_name, then the
# devices' setting parameters; a trailing separator), with Lens's product names as it spells them.
TEMPLATE_HEADER = ("mac_address,serial_number,device_model,lens_device_id,room_name,site_name,"
                   "device.prov.serverName,")
FLEET = [  # Lens's name, devices, category counted in (None: not counted)
    ("G 7500 Video Endpoint", 6, "video"),
    ("Group 310", 3, "video"),
    ("Poly Studio X30", 2, "video"),
    ("Plantronics EncorePro 515 USB", 40, "headset"),
    ("Savi 700-M Series", 30, "headset"),
    ("Calisto P240-M", 20, "headset"),
    ("Voyager 5200 Series", 15, "headset"),
    ("Edge E350", 7, "voice"),
    ("Poly Trio C60", 4, "voice"),
    ("Voyager 5200 Charge Case", 15, None),
    ("Poly Trio C60 Expansion Microphone", 4, None),
    ("BT 700", 12, None),
    ("TC8", 6, None),
    ("EagleEye Director II", 2, None),
    ("Lens Desktop Windows", 25, None),
    ("Lens Mobile iOS", 9, None),
    ("Poly Lens Relay", 1, None),
    ("Microsoft Teams Room", 5, None),
    ("Zoom Room", 2, None),
    ("Lenovo ThinkSmart Core", 5, None),
    ("Yealink MCore", 1, None),
    ("Logitech Tap Controller", 3, None),
]


def _template_export() -> str:
    lines, number = [TEMPLATE_HEADER], 0
    for model, count, _ in FLEET:
        for _ in range(count):
            number += 1
            mac = f"48:25:67:{number >> 8 & 255:02x}:{number & 255:02x}:00"
            lines.append(f"{mac},SN{number:06d},{model},,Raum {number % 4},Berlin,"
                         f"provisioning.example,")
    return "\r\n".join(lines) + "\r\n"


def test_a_real_lens_fleet_counts_each_category_and_never_an_accessory(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme", categories=ALL)])
    drop(workspace, "acme", "lens-2026-03.csv", _template_export())
    assert cli(workspace, "run", "--month", "2026-03") == 0
    rows = reconciliation(workspace, "2026-03")
    expected = {}
    for _, count, category in FLEET:
        if category:
            expected[category] = expected.get(category, 0) + count
    assert {r["category"]: r["devices_counted"] for r in rows} == {
        category: str(count) for category, count in expected.items()}
    assert {r["category"] for r in rows} == {"headset", "video", "voice"}  # no other row
    # 105 headsets against 100 ordered; the charge cases and dongles would have made it 132.
    assert row_for(rows, "acme", "headset")["status"] == "TRUE_UP"
    assert row_for(rows, "acme", "headset")["true_up_devices"] == "5"
    report = (workspace.home / "reports" / "2026-03" / "acme.html").read_text(encoding="utf-8")
    heading = re.search(r"<h2>Not counted: accessories, software and other makers' products "
                        r"\((\d+)\)</h2>", report)
    assert heading
    assert int(heading[1]) == sum(c for _, c, category in FLEET if not category)
    for model, count, category in FLEET:
        if not category:
            assert f"<tr><td>{model}</td><td class=\"n\">{count}</td></tr>" in report
    assert "Unclassified models" not in report
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT passed, failing FROM quality_checks "
                       "WHERE check_name = 'unclassified_share'").fetchall() == [(True, 0)]


def test_a_charge_case_never_raises_a_true_up(tmp_path):
    """The first version matched "Voyager 5200 Charge Case" to "Voyager 5200*" and alerted."""
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "headset": {"ordered_devices": 100, "unit_price_per_year": 12.0}})])
    cases = devices("Voyager 5200 Charge Case", 59, "CC") + devices("Voyager 5200 UC Charge Case",
                                                                   1, "CD")
    drop(workspace, "acme", "lens-2026-03.csv", export_text(
        devices("Voyager 5200 Series", 100) + cases + cases[:1]))  # one case listed twice
    assert cli(workspace, "run", "--month", "2026-03") == 0
    headset = row_for(reconciliation(workspace, "2026-03"), "acme", "headset")
    assert (headset["status"], headset["devices_counted"]) == ("OK", "100")
    assert not list((workspace.outbox / "2026-03").glob("true_up-*.eml"))
    report = (workspace.home / "reports/2026-03/acme.html").read_text(encoding="utf-8")
    assert "Devices listed more than once" not in report  # never counted, so never "once"


@pytest.mark.parametrize(("header", "separator", "encoding"), [
    ("Device Type,Serial Number,MAC Address", ",", "utf-8"),            # Lens docs' label
    ("Model Name;Serial Number;MAC Address;Site;Room", ";", "utf-8-sig"),
    ("Gerätetyp;Seriennummer;MAC-Adresse;Standort;Raum", ";", "cp1252"),
    ("Modell\tSeriennummer\tMAC-Adresse", "\t", "utf-16"),
])
def test_lens_and_german_header_labels_load(tmp_path, header, separator, encoding):
    workspace = make_workspace(tmp_path, [contract("acme")])
    width = header.count(separator) + 1
    rows = [separator.join([model, f"SN{i:04d}", f"00:04:f2:00:00:{i:02x}",
                            "München", "Raum 1"][:width])
            for i, model in enumerate(["G 7500 Video Endpoint"] * 5 + ["Poly Studio X50"] * 4)]
    drop(workspace, "acme", "Geräte 03.2026.csv", "\r\n".join([header, *rows]) + "\r\n",
         encoding=encoding)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["devices_counted"] == "9"
    assert not list(workspace.quarantine.rglob("*"))


def test_lens_placeholders_read_as_empty(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    text = ("Device Type,Serial Number,MAC Address,Site,Room\r\n"
            "Poly Studio X30,Not Set,48:25:67:13:97:33,Unknown,Not Set\r\n"
            "Poly Studio X30,Unknown,48:25:67:90:8b:97,Berlin,Raum 1\r\n"
            "Unknown,SN1,,Berlin,\r\n")
    drop(workspace, "acme", "lens-2026-03.csv", text)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    assert row_for(reconciliation(workspace, "2026-03"), "acme", "video")["devices_counted"] == "2"
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    assert con.execute("SELECT identity, site, room FROM snapshot_devices ORDER BY 1").fetchall() \
        == [("MAC:482567139733", None, None), ("MAC:482567908B97", "Berlin", "Raum 1")]
    assert con.execute("SELECT row_number, reject_reason FROM inventory_rows WHERE reject_reason "
                       "IS NOT NULL").fetchall() == [(4, "no model")]


def test_german_rma_list_with_dates_as_written_in_germany(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme", categories={
        "headset": {"ordered_devices": 20, "unit_price_per_year": 12.0}})])
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Voyager Focus 2 Series", 20)))
    drop(workspace, "acme", "RMA-Liste 2026-03.csv",
         "RMA-Nummer;Datum;Seriennummer;Modell\r\n"
         "R-1;02.03.2026;SN000001;Voyager Focus 2 Series\r\n"
         "R-2;2026-03-05;SN000002;Plantronics EncorePro 515 USB\r\n"
         "R-3;03.03.26;SN000003;Voyager Focus 2 Series\r\n")  # a two-digit year: no date
    assert cli(workspace, "run", "--month", "2026-03") == 0
    with (workspace.home / "reports" / "2026-03" / "rma.csv").open(newline="") as handle:
        [rma] = list(csv.DictReader(handle))
    assert (rma["headset_rmas"], rma["rma_rate_pct"], rma["status"]) == ("2", "10.00", "BREACH")


def test_a_refused_export_without_a_month_in_its_name_is_named_too(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    # After the first lens.pull_window_days days of November: November's.
    november = datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
    drop(workspace, "acme", "Devices.csv", "Seriennr.,Produkt-Typ\r\nA1,X\r\n", mtime=november)
    assert cli(workspace, "run", "--month", "2026-10") == 0
    [reminder] = (workspace.outbox / "2026-10").glob("missing_inventory-*.eml")
    text = message_from_bytes(reminder.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    assert "inbox/acme/Devices.csv for 2026-11 was rejected: no model column" in text


def test_a_refused_export_is_named_in_the_missing_inventory_reminder(tmp_path):
    workspace = make_workspace(tmp_path, [contract("acme")])
    drop(workspace, "acme", "Devices 2026-03.csv", "Seriennr.,Produkt-Typ\r\nA1,X\r\n")
    assert cli(workspace, "run", "--month", "2026-03") == 0
    [reminder] = (workspace.outbox / "2026-03").glob("missing_inventory-*.eml")
    text = message_from_bytes(reminder.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    assert "inbox/acme/Devices 2026-03.csv for 2026-03 was rejected: no model column" in text


@pytest.mark.parametrize(("name", "month"), [
    ("lens-2026-03.csv", "2026-03"),
    ("lens_2026_03.csv", "2026-03"),
    ("Geräte 03.2026.csv", "2026-03"),
    ("export-03-2026.csv", "2026-03"),
    ("Inventar März 2026.csv", "2026-03"),
    ("Inventar Maerz 2026.csv", "2026-03"),
    ("inventory March 2026.csv", "2026-03"),
    ("Lens Export Dez. 2026.csv", "2026-12"),
    ("28.11.2026 Lens.csv", "2026-11"),
    ("lens-2026-11-28.csv", "2026-11"),
    ("site-10-2026-03.csv", "2026-03"),  # YYYY-MM wins wherever it stands
    ("Sync 20-2026.csv", None),       # a model number is no month
    ("TC10-2026.csv", None),
    ("Edge B10-2026 list.csv", None),
    ("ID 10-1234.csv", None),
    ("summary 2026.csv", None),
    ("devices.csv", None),
])
def test_month_forms_partners_type(name, month):
    assert (str(month_in_name(name)) if month_in_name(name) else None) == month


def test_a_file_without_a_month_says_which_month_it_was_taken_for(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme")])
    # After the first lens.pull_window_days days of November: November's.
    november = datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
    drop(workspace, "acme", "Geräteliste.csv", export_text(devices("Poly Studio X30", 4)),
         mtime=november)
    assert cli(workspace, "run", "--month", "2026-10") == 0
    out = capsys.readouterr().out
    assert "the name holds no month, so it was taken for 2026-11" in out
    assert "put the month in the name" in out
    assert cli(workspace, "status") == 0
    status = capsys.readouterr().out
    assert "Taken for the month they were last changed (1" in status
    assert "2026-11 acme Geräteliste.csv" in status
    [reminder] = (workspace.outbox / "2026-10").glob("missing_inventory-*.eml")
    text = message_from_bytes(reminder.read_bytes(), policy=policy.default) \
        .get_body(("plain",)).get_content()
    assert "inbox/acme/Geräteliste.csv counts for 2026-11, not 2026-10" in text


def test_catalog_command_lists_unknown_and_not_counted_models(tmp_path, capsys):
    workspace = make_workspace(tmp_path, [contract("acme"), contract("bolt")])
    drop(workspace, "acme", "lens-2026-02.csv", export_text(
        devices("Poly Studio Z9 Prototype", 3) + devices("Lens Desktop Windows", 2, "LD")))
    drop(workspace, "acme", "lens-2026-03.csv", export_text(
        devices("Poly Studio Z9 Prototype", 5) + devices("Poly Studio X30", 9, "X")))
    drop(workspace, "bolt", "lens-2026-03.csv", export_text(
        devices("Poly Studio Z9 Prototype", 2, "B") + devices("Acme Widget", 1, "W")
        + devices("Voyager 5200 Charge Case", 7, "C")))
    assert cli(workspace, "ingest") == 0
    capsys.readouterr()
    target = tmp_path / "review.csv"
    assert cli(workspace, "catalog", "--csv", str(target)) == 0
    out = capsys.readouterr().out
    unknown, not_counted = out.split("Not counted", 1)
    assert "Models the catalog does not know (2)" in unknown
    assert unknown.index("Poly Studio Z9 Prototype") < unknown.index("Acme Widget")
    assert "Voyager 5200 Charge Case" in not_counted
    assert "Lens Desktop Windows" in not_counted
    with target.open(newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [(r["category"], r["model"], r["devices"], r["customers"], r["months"])
            for r in listed] == [
        ("unclassified", "Poly Studio Z9 Prototype", "7", "2", "2"),  # acme's latest 5 + bolt's 2
        ("unclassified", "Acme Widget", "1", "1", "1"),
        ("not_counted", "Voyager 5200 Charge Case", "7", "1", "1"),
        ("not_counted", "Lens Desktop Windows", "2", "1", "1")]
    # Once the partner adds the model, it is classified and off the list.
    workspace.catalog_file.write_text("model,category,end_of_service\n"
                                      "Studio Z9*,video,\n", encoding="utf-8")
    assert cli(workspace, "catalog") == 0
    assert "Poly Studio Z9 Prototype" not in capsys.readouterr().out


# --- the Lens API ----------------------------------------------------------------------------

def _lens_workspace(tmp_path, fake: FakeLens, tenants: dict[str, str], page_size=None):
    workspace = make_workspace(tmp_path, [contract(customer_id, categories=ALL,
                                                   lens_tenant_id=tenant)
                                          for customer_id, tenant in tenants.items()])
    lens = {"token_url": fake.token_url, "graphql_url": fake.graphql_url}
    if page_size:
        lens["page_size"] = page_size
    write_yaml(workspace.partner_file, {"lens": lens})
    return workspace


def _pull(workspace, fake):
    return pull_lens(load_config(workspace), Month(2026, 11), today=date(2026, 11, 24),
                     retry=FAST, credentials=LensCredentials(fake.client_id, fake.client_secret))


def test_a_recorded_public_lens_page_loads_verbatim(tmp_path):
    recorded = (FIXTURES / "polylens2otel-devicesearch.json").read_bytes()
    with FakeLens({}, recorded={"t-recorded": recorded}) as fake:
        workspace = _lens_workspace(tmp_path, fake, {"acme": "t-recorded"})
        [result] = _pull(workspace, fake)
    assert (result.outcome, result.devices) == ("loaded", 2), result.detail
    con = duckdb.connect(str(workspace.warehouse), read_only=True)
    # No serial in the recorded page: the MAC is the identity; room null, site "Home".
    assert con.execute("SELECT identity, model, site, room FROM snapshot_devices ORDER BY 1"
                       ).fetchall() == [("MAC:482567139733", "Edge E350", "Home", None),
                                        ("MAC:482567908B97", "Edge E350", "Home", None)]
    con.close()
    assert cli(workspace, "reconcile", "--month", "2026-11") == 0
    assert row_for(reconciliation(workspace, "2026-11"), "acme", "voice")["devices_counted"] == "2"


def test_the_fake_answers_in_the_recorded_shape():
    """The fake's generated nodes carry the keys and kinds of values the recorded page has."""
    recorded = json.loads((FIXTURES / "polylens2otel-devicesearch.json").read_bytes())
    node = recorded["data"]["tenant"]["inventory"]["deviceSearch"]["edges"][0]["node"]
    with FakeLens({"t-acme": 8}) as fake:
        import requests
        token = requests.post(fake.token_url, json={
            "client_id": fake.client_id, "client_secret": fake.client_secret,
            "grant_type": "client_credentials"}, timeout=5).json()["access_token"]
        from pipelines.lens_api.client import DEVICE_SEARCH
        answer = requests.post(fake.graphql_url, json={
            "query": DEVICE_SEARCH, "variables": {"tenantId": "t-acme",
                                                  "params": {"pageSize": 8}}},
            headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    nodes = [e["node"] for e in answer["data"]["tenant"]["inventory"]["deviceSearch"]["edges"]]
    shared = {"id", "name", "connected", "lastDetected", "softwareVersion", "hardwareModel",
              "productId", "macAddress", "site", "room"}
    assert shared <= node.keys()
    assert all(shared <= n.keys() for n in nodes)
    networked = [n for n in nodes if n["macAddress"]]
    assert networked
    assert all(n["id"] == n["macAddress"].replace(":", "") for n in networked)
    assert any(n["serialNumber"] is None for n in networked)
    assert any(n["room"] is None for n in nodes)
    assert any(n["productId"] == n["hardwareModel"] for n in nodes)


@pytest.mark.parametrize("message", ["Rate limit exceeded", "Query cost rate-limit reached",
                                     "Cost over limit, try again later"])
def test_every_rate_limit_wording_is_retried(tmp_path, message):
    faults = Faults(rate_limit_400=2, rate_limit_message=message, at_request=1)
    with FakeLens({"t-acme": 1_500}, faults=faults) as fake:
        workspace = _lens_workspace(tmp_path, fake, {"acme": "t-acme"})
        [result] = _pull(workspace, fake)
        assert fake.faults.rate_limit_400 == 0, "the fault never fired"
    assert (result.outcome, result.devices) == ("loaded", 1_500), result.detail


def test_every_page_is_sorted_and_pages_are_the_public_clients_size(tmp_path):
    with FakeLens({"t-acme": 1_500}) as fake:
        workspace = _lens_workspace(tmp_path, fake, {"acme": "t-acme"})
        [result] = _pull(workspace, fake)
        assert result.outcome == "loaded"
        assert fake.page_sizes == [700, 700, 700]
        assert fake.sorts == [{"fields": [{"name": "id", "direction": "ASC"}]}] * 3


def test_the_query_budget_is_waited_for_not_overspent(tmp_path):
    # Each page of 100 costs 11; 30 a window lets two pages through, then the client must wait.
    with FakeLens({"t-acme": 1_000}, budget=30, budget_window=0.3) as fake:
        workspace = _lens_workspace(tmp_path, fake, {"acme": "t-acme"}, page_size=100)
        [result] = _pull(workspace, fake)
        assert (result.outcome, result.devices) == ("loaded", 1_000), result.detail
        assert fake.refused_over_budget == 0


def test_an_error_inside_the_search_result_fails_the_pull_with_its_words(tmp_path):
    faults = Faults(search_error="Search backend unavailable for tenant")
    with FakeLens({"t-acme": 50}, faults=faults) as fake:
        workspace = _lens_workspace(tmp_path, fake, {"acme": "t-acme"})
        [result] = _pull(workspace, fake)
    assert result.outcome == "failed"
    assert "Lens could not search the inventory: Search backend unavailable" in result.detail
