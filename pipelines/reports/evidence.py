"""The evidence pack: every device of a customer's month snapshot with the status the
reconciliation gave it, as a filterable Excel table and the same rows as CSV, so a CSM can
check each count without access to the partner's Poly Lens. The statuses come from SQL
(sql/reports/evidence_devices.sql) over the views the reconciliation counts with, never from
Python, so the pack cannot disagree with the report. Bounded (MAX_ROWS), and a cut says so.
Each row carries the device's last seen, and a counted device not seen for the policy's days
(rules.md "Devices not seen") is marked so: counted under `flag`, not counted under `exclude`."""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.files import write_bytes_atomically
from pipelines.core.i18n import N_, Formats
from pipelines.core.months import Month
from pipelines.core.safe_csv import neutralise
from pipelines.warehouse.connection import run_sql

MAX_ROWS = 50_000
COLUMNS = ("category", "status", "reject_reason", "model", "site", "room", "serial", "mac",
           "lens_device_id", "last_seen", "source", "row_number")
# What a device's status in the pack is called (sql/reports/evidence_devices.sql's keys)
STATUS_NAMES = {"counted": N_("Counted"), "end_of_life": N_("End of life"),
                "duplicate": N_("Duplicate"), "rejected": N_("Rejected"),
                "not_counted": N_("Not counted"), "quote_only": N_("Quote only"),
                "unclassified": N_("Unclassified"),
                "counted_not_seen": N_("Counted, not seen"),
                "not_seen": N_("Not seen, not counted")}


@dataclass(frozen=True)
class EvidencePack:
    xlsx: Path
    csv: Path
    rows: int  # rows written
    total: int  # rows the snapshot has

    @property
    def cut(self) -> bool:
        return self.rows < self.total


def _headers(formats: Formats) -> list[str]:
    _ = formats.gettext
    return [_("Category"), _("Status"), _("Why not counted"), _("Model"), _("Site"), _("Room"),
            _("Serial"), _("MAC"), _("Lens id"), _("Last seen"), _("From file or pull"),
            _("Row")]


def write_evidence_pack(con, folder: Path, customer_id: str, month: Month, language: str,
                        not_seen: Mapping[str, str] | None = None, not_seen_days: int = 0,
                        max_rows: int = MAX_ROWS) -> EvidencePack:
    """Write `<customer_id>-devices.xlsx` and `.csv` into the month's report folder.
    `not_seen`: the contract's categories whose policy flags or excludes devices not seen for
    `not_seen_days` days (`flag` / `exclude`), as the month was reconciled."""
    rules = not_seen or {}
    rows = run_sql(con, "reports/evidence_devices.sql", customer_id=customer_id,
                   month=str(month), not_seen_days=not_seen_days,
                   flagged=[c for c, rule in rules.items() if rule == "flag"],
                   excluded=[c for c, rule in rules.items() if rule == "exclude"]).fetchall()
    formats = Formats(language)
    kept = [_worded(row, formats) for row in rows[:max_rows]]
    headers = _headers(formats)
    note = (formats.gettext("Cut: %(shown)s of %(total)s devices shown.")
            % {"shown": formats.number(len(kept)), "total": formats.number(len(rows))}
            ) if len(kept) < len(rows) else None
    pack = EvidencePack(folder / f"{customer_id}-devices.xlsx",
                        folder / f"{customer_id}-devices.csv", len(kept), len(rows))
    write_bytes_atomically(pack.xlsx, _xlsx(headers, kept, note))
    write_bytes_atomically(pack.csv, _csv(headers, kept, note, _delimiter(language)))
    return pack


def cut_note(csv_path: Path, language: str) -> str | None:
    """The note a cut pack begins with (its CSV's first line, a single cell), if it was cut."""
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        first = next(csv.reader(handle, delimiter=_delimiter(language)), [])
    return first[0] if len(first) == 1 else None


def _delimiter(language: str) -> str:
    """A German spreadsheet opens a CSV split on semicolons (its decimal comma)."""
    return ";" if language == "de" else ","


def _worded(row: tuple, formats: Formats) -> tuple:
    """A row with its category and status in the reader's words."""
    category, status, *rest = row
    return (formats.category(category), formats.gettext(STATUS_NAMES[status]), *rest)


def _xlsx(headers: list[str], rows: list[tuple], note: str | None) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    sheet = book.add_worksheet("Devices")
    first = 0
    if note:  # a cut is said above the table, never silently
        sheet.write_string(0, 0, note, book.add_format({"bold": True, "font_color": "#9c0006"}))
        first = 1
    if rows:
        sheet.add_table(first, 0, first + len(rows), len(headers) - 1, {
            "columns": [{"header": h} for h in headers], "data": [list(r) for r in rows],
            "style": "Table Style Medium 2"})
    else:
        for column, header in enumerate(headers):
            sheet.write_string(first, column, header)
    sheet.freeze_panes(first + 1, 0)
    for column, header in enumerate(headers):
        widest = max([len(header)] + [len(str(r[column] or "")) for r in rows[:1000]])
        sheet.set_column(column, column, min(max(widest + 2, 8), 50))
    book.close()
    return buffer.getvalue()


def _csv(headers: list[str], rows: list[tuple], note: str | None, delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if note:
        writer.writerow([note])
    writer.writerow(headers)
    for row in rows:
        writer.writerow([value if isinstance(value, int) else neutralise(value) for value in row])
    return out.getvalue().encode("utf-8-sig")
