"""Reading Lens device exports and RMA logs: the header found and matched to Lens's labels
(pipelines/ingest_lens.py), then the rows, by the reference reader here (record by record in
Python) or, planned here, by DuckDB's CSV reader (staging.py).

A Lens export arrives in whatever shape the partner's tool produced: comma, semicolon or tab
separated; UTF-8 with or without BOM, UTF-16 or Windows-1252; headers in Lens UI, API or
snake_case style.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.core.i18n import N_, Message
from pipelines.ingest_lens import (
    INVENTORY_ALIASES,
    LAST_SEEN_ALIASES,
    RMA_ALIASES,
    header_key,
)
from pipelines.intake.uploads import (
    Source,
    UnreadableExport,
    csv_sources,
    in_entry,
    read_source,
    scan_source,
)

SEPARATORS = (",", ";", "\t")
# The columns an inventory export is read for: the raw layer's fields, and the last-seen dates
# (a raw column too: rules.md "Devices not seen"; and evidence of the export's month, staging.py).
EXPORT_COLUMNS = {**INVENTORY_ALIASES, "last_seen": LAST_SEEN_ALIASES}
MAX_FIELD_CHARS = 100_000
MAX_COLUMNS = 1_000
# NUL, control characters JSON escapes differently in Python and DuckDB (\u000b, \u000B), and
# the white space besides space and tab that the reference reader trims.
_CONTROL_CHARACTERS = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"]
# What str.strip() trims, spelled out for SQL's trim(cell, characters).
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# Of those, what DuckDB's plain trim(cell) leaves (it trims the Unicode spaces).
_NOT_TRIMMED_BY_DUCKDB = ("\t", "\x85", "\u2028", "\u2029")
_TRIMMING_DEPENDS_ON = (*_NOT_TRIMMED_BY_DUCKDB, '"')


@dataclass(frozen=True)
class ParsedExport:
    rows: pd.DataFrame  # row_number + one column per field
    encoding: str
    separator: str
    columns: dict[str, str]  # field -> the header it was read from


def _separator(text: str) -> str:
    head = text[:65536].splitlines()  # the first line is all it needs, not every line
    first_line = next((line for line in head[:-1] if line.strip()), None)
    if first_line is None:
        first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # ties: comma first
    return best if counts[best] else ","


def _map_columns(headers: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, int]:
    keys = [header_key(h) for h in headers]
    found: dict[str, int] = {}
    for field, names in aliases.items():
        for name in names:
            if name in keys and keys.index(name) not in found.values():
                found[field] = keys.index(name)
                break
    return found


@dataclass
class _Table:
    source: Source
    headers: list[str]
    header_row: int
    columns: dict[str, int]
    separator: str
    reader: Iterator[list[str]]  # positioned after the header record
    lines_read: int  # physical lines up to and including the header

    def require(self, field: str, problem: Message) -> None:
        if field not in self.columns:
            found = ", ".join(repr(h) for h in self.headers) or Message.of(N_("nothing"))
            raise UnreadableExport(in_entry(self.source.entry, Message.of(
                N_("%(problem)s in the header row (row %(row)s), found: %(found)s"),
                problem=problem, row=str(self.header_row), found=found)))

    def records(self) -> list[tuple[int, list[str]]]:
        """The data records after the header, numbered as a spreadsheet shows them (blank
        records keep their number but are left out)."""
        entry, records, row_number = self.source.entry, [], self.header_row
        try:
            for record in self.reader:
                row_number += 1
                if not any(cell.strip() for cell in record):
                    continue
                _check_width(entry, row_number, record)
                records.append((row_number, record))
        except csv.Error as error:
            raise _broken(entry, row_number + 1, error) from None
        return records


def _broken(entry: str | None, row_number: int, error: csv.Error) -> UnreadableExport:
    return UnreadableExport(in_entry(entry, Message.of(
        N_("row %(row)s: the CSV structure is broken (%(error)s); re-export the file"),
        row=str(row_number), error=str(error))))


def _check_width(entry: str | None, row_number: int, record: list[str]) -> None:
    if len(record) > MAX_COLUMNS:
        raise UnreadableExport(in_entry(entry, Message.of(
            N_("row %(row)s has %(columns)s columns (at most %(most)s make sense): this is not "
               "a device export"), row=str(row_number), columns=len(record), most=MAX_COLUMNS)))


def _open_table(source: Source, aliases: dict[str, tuple[str, ...]]) -> _Table:
    """The table's header: the first record that is not blank."""
    separator = _separator(source.text)
    lines = io.StringIO(source.text, newline="")
    reader = csv.reader(lines, delimiter=separator)
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # spreadsheet numbering: blank lines keep their row
            if any(cell.strip() for cell in record):
                _check_width(source.entry, row_number, record)
                headers = [cell.strip() for cell in record]
                return _Table(source, headers, row_number, _map_columns(headers, aliases),
                              separator, reader, reader.line_num)
    except csv.Error as error:
        raise _broken(source.entry, row_number + 1, error) from None
    raise UnreadableExport(in_entry(source.entry, Message.of(
        N_("the file is empty: no header row"))))


def _frame(table: _Table, fields: tuple[str, ...]) -> pd.DataFrame:
    records = table.records()
    data: dict[str, list] = {"row_number": [n for n, _ in records]}
    for field in fields:
        index = table.columns.get(field)
        data[field] = [(cells[index].strip()
                        if index is not None and index < len(cells) else None)
                       for _, cells in records]
    return pd.DataFrame(data)


def _parsed(tables: list[_Table], fields: tuple[str, ...]) -> ParsedExport:
    frames = [_frame(table, fields) for table in tables]
    first = tables[0]
    return ParsedExport(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0],
                        first.source.encoding, first.separator,
                        {field: first.headers[i] for field, i in first.columns.items()})


def _inventory_tables(sources: list[Source]) -> list[_Table]:
    tables = [_open_table(source, EXPORT_COLUMNS) for source in sources]
    for table in tables:
        table.require("model", Message.of(N_(
            "no model column: expected one of 'Device Type', 'Model', 'Model Name', "
            "'hardwareModel', 'Product', 'device_model' or 'Modell'")))
        if not {"serial", "mac", "lens_device_id"} & table.columns.keys():
            table.require("serial", Message.of(N_(
                "no device identity column: expected a serial number ('Serial Number', "
                "'Seriennummer'), MAC address ('MAC Address', 'MAC-Adresse') or Lens device id "
                "('Device ID') column")))
    return tables


def read_inventory_export(path: Path) -> ParsedExport:
    """A Lens device export (or a zip of them): a model column, and a serial, MAC or Lens id
    column. Raises `UnreadableExport`, and nothing else, for anything it cannot use.

    This is the reference reader, record by record in Python; `plan_inventory_export` with
    staging.py gives the same rows, mostly through DuckDB's CSV reader."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with csv_sources(path) as sources:
        return _parsed(_inventory_tables(sources), tuple(EXPORT_COLUMNS))


def read_rma_log(path: Path) -> ParsedExport:
    """An RMA log: rma number, date (YYYY-MM-DD), serial, model."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with csv_sources(path) as sources:
        tables = [_open_table(source, RMA_ALIASES) for source in sources]
        for table in tables:
            for field, header in (("rma_number", "'rma_number'"), ("rma_date", "'date'"),
                                  ("model", "'model'")):
                table.require(field, Message.of(N_("not an RMA log: no %(header)s column"),
                                                header=header))
        return _parsed(tables, tuple(RMA_ALIASES))


@dataclass(frozen=True)
class TablePlan:
    """One CSV table of an inventory export with its header read and checked, ready to stage."""
    entry: str | None  # the zip entry it came from
    source: Path  # the upload, or the zip entry extracted to the scratch folder
    path: Path  # its text as UTF-8 for DuckDB: the source, or a converted copy in scratch
    separator: str
    headers: tuple[str, ...]
    header_row: int  # also the physical lines up to the header, where duckdb_readable
    columns: tuple[tuple[str, int], ...]  # field, column index
    data_lines: int  # physical lines after the header
    # Every record is one line and holds nothing DuckDB's reader could take differently from
    # the reference reader (NUL and other control characters, lone CRs; overlong lines make
    # DuckDB decline).
    duckdb_readable: bool
    # How cells are trimmed to match str.strip(): "all" where a cell may hold white space
    # DuckDB's plain trim() keeps (a tab, say: the slower trim of every such character), else
    # "spaces" (DuckDB's plain trim(), which trims the Unicode spaces).
    trim: str

    @property
    def layout(self) -> tuple:
        """Tables of one layout are read by DuckDB together."""
        return self.separator, self.headers, self.header_row


@dataclass(frozen=True)
class ExportPlan:
    tables: tuple[TablePlan, ...]

    @property
    def data_lines(self) -> int:
        return sum(table.data_lines for table in self.tables)


def plan_inventory_export(path: Path, scratch: Path) -> ExportPlan:
    """An inventory export's tables with their headers read and checked, without reading the
    rows (staging.py does, many exports at a time). Raises `UnreadableExport` as
    `read_inventory_export` does for anything wrong with the file as a whole or its header.
    Each file is read once in chunks (`scan_source`), never held whole; zip entries go to
    `scratch`, and so does the UTF-8 copy of text in another encoding."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with csv_sources(path, scratch, lambda source, entry: scan_source(
            source, entry, scratch, _Scan)) as scanned:
        tables = _inventory_tables([source for source, _, _ in scanned])
        return ExportPlan(tuple(_plan(table, utf8, scan)
                                for table, (_, utf8, scan) in zip(tables, scanned, strict=True)))


class _Scan:
    """What a plan needs to know of the whole text (TablePlan), learnt chunk by chunk."""

    def __init__(self):
        self.newlines = self.carriage_returns = self.crlfs = 0
        self.control = False
        self.present: set[str] = set()  # of the characters trimming depends on
        self.last = ""

    def feed(self, text: str, newlines: int) -> None:
        if not text:
            return
        self.newlines += newlines
        self.carriage_returns += text.count("\r")
        self.crlfs += text.count("\r\n") + (self.last == "\r" and text[0] == "\n")
        self.control = self.control or any(c in text for c in _CONTROL_CHARACTERS)
        self.present.update(c for c in _TRIMMING_DEPENDS_ON if c not in self.present
                            and c in text)
        self.last = text[-1]


def _plan(table: _Table, utf8: Path, scan: _Scan) -> TablePlan:
    readable = (table.lines_read == table.header_row and not scan.control
                and scan.carriage_returns == scan.crlfs)
    return TablePlan(table.source.entry, table.source.path, utf8, table.separator,
                     tuple(table.headers), table.header_row, tuple(table.columns.items()),
                     scan.newlines + (scan.last != "\n") - table.lines_read, readable,
                     _trimming(scan.present, table.separator))


def _trimming(present: set[str], separator: str) -> str:
    """How cells must be trimmed to match str.strip() (TablePlan.trim). (Telling which files
    need no trimming at all costs more in substring tests than the trimming itself.)"""
    if present & set(_NOT_TRIMMED_BY_DUCKDB[1:]) or (
            "\t" in present if separator != "\t" else '"' in present):  # a tab in a cell is quoted
        return "all"
    return "spaces"


def read_planned_table(table: TablePlan) -> pd.DataFrame:
    """A planned table's rows by the reference reader (the path DuckDB declined), with its
    last-seen cells as `last_seen`."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    opened = _open_table(read_source(table.source, table.entry), EXPORT_COLUMNS)
    return _frame(opened, tuple(EXPORT_COLUMNS))


# --- the Lens GraphQL API ---------------------------------------------------------------------

# The tenant-scoped device search of Lens's public clients (polylens2otel, lensctl-ops-deck),
