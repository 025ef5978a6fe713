"""The evidence pack: every device of the month's snapshot, with the status the reconciliation
used, as XLSX and CSV beside the report; its counted devices equal reconciliation.csv's."""
import csv
import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import duckdb

from pipelines.core.config import load_config
from pipelines.core.i18n import Formats
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.delivery.messages import compose, ledger_key
from pipelines.reconciliation.month import compute_month
from pipelines.reports.evidence import write_evidence_pack
from pipelines.warehouse.connection import open_warehouse

MONTH = "2026-10"


def _csv_rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")),
                           delimiter=delimiter))


def _xlsx_cells(path: Path) -> list[str]:
    """The sheet's strings (the shared strings table), read without a spreadsheet library."""
    with zipfile.ZipFile(path) as book:
        xml = book.read("xl/sharedStrings.xml").decode()
    return re.findall(r"<t[^>]*>([^<]*)</t>", xml)


def test_the_pack_lists_every_device_with_the_status_reconciliation_counted(demo_copy):
    folder = demo_copy / "reports" / MONTH
    config = load_config(Workspace.resolve(demo_copy))
    reconciliation = list(csv.DictReader((folder / "reconciliation.csv").open(newline="")))
    with duckdb.connect(str(config.workspace.warehouse), read_only=True) as con:
        snapshot_rows = dict(con.execute(
            "SELECT customer_id, arg_max(row_count, receipt_seq) FROM snapshots "
            "WHERE month = ? GROUP BY customer_id", [MONTH]).fetchall())
    assert snapshot_rows
    for customer in config.contracts.in_effect(Month.parse(MONTH)):
        if customer.id not in snapshot_rows:
            continue
        f = Formats(config.language_of(customer))
        expected = {f.category(r["category"]): int(r["devices_counted"] or 0)
                    for r in reconciliation if r["customer_id"] == customer.id}
        delimiter = ";" if f.language == "de" else ","
        header, *rows = _csv_rows(folder / f"{customer.id}-devices.csv", delimiter)
        assert len(header) == 12
        # reconciliation.csv counts a category the contract does not count under its own name
        counted = Counter(row[0] for row in rows if row[1] in {
            f.gettext("Counted"), *map(f.category, ("not_counted", "quote_only", "unclassified"))})
        assert {c: counted.get(c, 0) for c in expected} == expected, customer.id
        # A device the contract does not count is never "counted", whatever its category.
        for key in ("not_counted", "quote_only", "unclassified"):
            assert {row[1] for row in rows if row[0] == f.category(key)} <= {
                f.category(key), f.gettext("Duplicate"), f.gettext("Rejected")}, customer.id
        assert len(rows) == snapshot_rows[customer.id]  # every row of the snapshot
        cells = _xlsx_cells(folder / f"{customer.id}-devices.xlsx")
        assert header[0] in cells
        assert f"{customer.id}-devices.xlsx" in (folder / f"{customer.id}.html").read_text()


def test_a_cut_pack_says_so_in_the_sheet_and_csv(demo_copy, tmp_path):
    customer = _first_customer(demo_copy)
    with open_warehouse(Workspace.resolve(demo_copy), read_only=True) as con:
        pack = write_evidence_pack(con, tmp_path, customer, Month.parse(MONTH), "en", max_rows=3)
    assert pack.cut
    assert pack.rows == 3
    note, header, *rows = _csv_rows(pack.csv)
    assert note == [f"Cut: 3 of {pack.total:,} devices shown."]
    assert len(rows) == 3
    assert note[0] in _xlsx_cells(pack.xlsx)


def test_a_german_customer_gets_semicolons_and_german_headers(demo_copy, tmp_path):
    customer = _first_customer(demo_copy)
    with open_warehouse(Workspace.resolve(demo_copy), read_only=True) as con:
        pack = write_evidence_pack(con, tmp_path, customer, Month.parse(MONTH), "de")
    header = _csv_rows(pack.csv, ";")[0]
    assert header[:3] == ["Kategorie", "Status", "Warum nicht gezählt"]


def _first_customer(home: Path) -> str:
    rows = csv.DictReader((home / "reports" / MONTH / "reconciliation.csv").open(newline=""))
    return next(rows)["customer_id"]


def test_a_cut_pack_is_said_in_the_email_and_leaves_the_ledger_key_alone(demo_copy):
    config = load_config(Workspace.resolve(demo_copy))
    month = Month.parse(MONTH)
    folder = config.workspace.reports_for(month)
    with open_warehouse(config.workspace, read_only=True) as con:
        result = compute_month(con, config, month)
        before = {d.customer_id: ledger_key(d, month)
                  for d in compose(config, result) if d.kind == "report"}
        customer = _first_customer(demo_copy)
        language = config.language_of(config.contracts.get(customer))
        pack = write_evidence_pack(con, folder, customer, month, language, max_rows=3)
    [report] = [d for d in compose(config, result)
                if d.kind == "report" and d.customer_id == customer]
    assert report.evidence == [pack.xlsx, pack.csv]
    assert any(_csv_rows(pack.csv, ";" if language == "de" else ",")[0][0] in p
               for p in report.paragraphs)
    assert ledger_key(report, month) == before[customer]
