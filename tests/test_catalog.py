"""Catalog matching (interfaces.md): normalisation, exact before longest prefix, overrides."""
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
)

from pipelines.core.catalog import (
    CATALOG_CATEGORIES,
    SHIPPED_CATALOG,
    load_catalog,
    read_catalog_file,
)
from pipelines.warehouse.catalog import store_catalog
from pipelines.warehouse.connection import create_schema, run_sql


def classify(models, catalog_rows):
    con = duckdb.connect()
    create_schema(con)
    store_catalog(con, catalog_rows)
    keys = {model: con.execute("SELECT normalize_model(?)", [model]).fetchone()[0]
            for model in models}
    for key in filter(None, set(keys.values())):  # as publishing a snapshot records them
        con.execute("INSERT INTO seen_models VALUES (?)", [key])
    found = dict(con.execute("SELECT model_key, category || coalesce(' ' || end_of_service, '') "
                             "FROM model_classes").fetchall())
    return {model: found.get(keys[model], "rejected") for model in models}


@pytest.mark.parametrize(("model", "expected"), [
    ("Poly Voyager Focus 2 Series", "headset"),
    ("  poly   VOYAGER  focus 2 ", "headset"),
    ("Polycom VVX 450", "voice"),
    ("VVX 1500", "voice"),
    ("Poly Sync 20-M", "headset"),
    ("Calisto 5300-M", "headset"),
    ("Poly Studio X30", "video"),
    ("Poly Studio P5", "headset"),
    ("Poly CCX 505", "voice"),
    ("Poly RealPresence DMA 7000", "quote_only"),
    ("Poly Medialign 55", "quote_only"),
    ("Polycom SoundPoint IP 501", "voice 2014-09-30"),
    ("Polycom SoundPoint IP 650", "voice"),
    ("Poly Studio Z9 Prototype", "unclassified"),
    ("Poly", "unclassified"),
    ("", "rejected"),
])
def test_shipped_catalog_classifies_lens_names(model, expected):
    assert classify([model], load_catalog(None))[model] == expected


def test_exact_match_wins_then_longest_prefix(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("model,category,end_of_service\n"
                    "Studio*,video,\nStudio X*,voice,\nStudio X30,headset,\n")
    rows = read_catalog_file(path, "workspace")
    assert classify(["Studio X30", "Studio X30 Pro", "Studio Y", "Poly Studio X50"], rows) == {
        "Studio X30": "headset", "Studio X30 Pro": "voice", "Studio Y": "video",
        "Poly Studio X50": "voice"}


def test_workspace_row_replaces_shipped_row(tmp_path):
    workspace = make_workspace(tmp_path, [contract(categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 1.0}})])
    workspace.catalog_file.write_text(
        "# our corrections\nmodel,category,end_of_service\n"
        "Studio X30*,video,2026-02-28\n"      # replaces the shipped row: now end-of-life
        "Acme Cam*,video,\n")                 # extends the catalog
    drop(workspace, "acme", "lens-2026-03.csv",
         export_text(devices("Poly Studio X30", 4) + devices("Acme Cam 2", 3, prefix="AC")))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    row = row_for(reconciliation(workspace, "2026-03"), "acme", "video")
    assert (row["devices_counted"], row["eol_excluded"]) == ("3", "4")


def test_end_of_life_is_judged_against_the_report_months_last_day(tmp_path):
    workspace = make_workspace(tmp_path, [contract(categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 1.0}})])
    workspace.catalog_file.write_text("model,category,end_of_service\n"
                                      "Studio X30*,video,2026-03-31\n")
    for month in ("02", "03"):
        drop(workspace, "acme", f"lens-2026-{month}.csv",
             export_text(devices("Poly Studio X30", 10)))
    assert cli(workspace, "ingest") == 0
    for month, counted, eol in (("2026-02", "10", "0"), ("2026-03", "0", "10")):
        assert cli(workspace, "reconcile", "--month", month) == 0
        row = row_for(reconciliation(workspace, month), "acme", "video")
        assert (row["devices_counted"], row["eol_excluded"]) == (counted, eol)


def test_shipped_catalog_is_valid_and_unique():
    rows = read_catalog_file(SHIPPED_CATALOG, "shipped")
    assert len(rows) > 150
    con = duckdb.connect()
    run_sql(con, "warehouse/rule_macros.sql")
    # Unique as matched: two spellings of one pattern ("G 7500*", "G7500*") would shadow each other.
    keys = [(con.execute("SELECT catalog_key(normalize_model(?))", [r.model.rstrip("*")])
             .fetchone()[0], r.model.endswith("*")) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r.category for r in rows} == set(CATALOG_CATEGORIES)


def test_a_catalog_saved_by_german_excel_is_read(tmp_path):
    # "CSV UTF-8 (durch Trennzeichen getrennt)": a BOM, semicolons, dates as Excel shows them.
    workspace = make_workspace(tmp_path, [contract(categories={
        "video": {"ordered_devices": 10, "unit_price_per_year": 1.0}})])
    workspace.catalog_file.write_bytes(
        "\ufeffmodel;category;end_of_service\r\n"
        "Studio X30*;video;28.02.2026\r\n"
        "Acme Cam*;video;\r\n"
        "Acme Kabel, 2 m;not_counted;\r\n".encode())
    rows = read_catalog_file(workspace.catalog_file, "workspace")
    assert [(r.model, r.category, str(r.end_of_service)) for r in rows] == [
        ("Studio X30*", "video", "2026-02-28"), ("Acme Cam*", "video", "None"),
        ("Acme Kabel, 2 m", "not_counted", "None")]
    assert classify(["Poly Studio X30", "Acme Cam 2", "Acme Kabel, 2 m"],
                    load_catalog(workspace.catalog_file)) == {
        "Poly Studio X30": "video 2026-02-28", "Acme Cam 2": "video",
        "Acme Kabel, 2 m": "not_counted"}
    drop(workspace, "acme", "lens-2026-03.csv",
         export_text(devices("Poly Studio X30", 4) + devices("Acme Cam 2", 3, prefix="AC")))
    assert cli(workspace, "ingest") == 0
    assert cli(workspace, "reconcile", "--month", "2026-03") == 0
    row = row_for(reconciliation(workspace, "2026-03"), "acme", "video")
    assert (row["devices_counted"], row["eol_excluded"]) == ("3", "4")


@pytest.mark.parametrize(("text", "message"), [
    ("model;category;end_of_service\nStudio X30*;video;31.02.2026\n",
     ("catalog.csv: line 2, column end_of_service: '31.02.2026' is not a date "
      "(YYYY-MM-DD or DD.MM.YYYY, or empty)")),
    ("Modell;Kategorie;Dienstende\nStudio X30*;video;\n",
     ("catalog.csv: line 1: the header must be model,category,end_of_service "
      "(found Modell;Kategorie;Dienstende)")),
])
def test_a_semicolon_catalog_keeps_the_checks(tmp_path, capsys, text, message):
    workspace = make_workspace(tmp_path, [contract()])
    workspace.catalog_file.write_text(text, encoding="utf-8")
    assert cli(workspace, "reconcile", "--month", "2026-03") == 2
    assert capsys.readouterr().err.strip() == message
