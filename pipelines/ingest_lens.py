"""Reading what Poly Lens gives us: the Lens GraphQL API, device exports (CSV), and RMA logs.

A Lens export arrives in whatever shape the partner's tool produced: comma, semicolon or tab
separated; UTF-8 with or without BOM, UTF-16 or Windows-1252; headers in Lens UI, API or
snake_case style. Headers are matched case- and punctuation-insensitively against aliases.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import random
import re
import struct
import tempfile
import time
import unicodedata
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import requests

log = logging.getLogger("polyrecon")

INVENTORY_ALIASES: dict[str, tuple[str, ...]] = {
    # field: header aliases, normalised by header_key, best first. Lens's UI and docs, its API
    # field names, snake_case dumps, and the German labels of partners' own lists.
    "serial": ("serialnumber", "serial", "serialno", "seriennummer", "seriennr"),
    "mac": ("macaddress", "mac", "macadresse"),
    # "Device Type" is what Lens's documentation calls the model column; a file with a model
    # column as well reads the model from that one.
    "model": ("devicemodel", "model", "hardwaremodel", "modelname", "product", "productname",
              "hardwareproduct", "modell", "modellname", "devicetype", "geratetyp",
              "geraetetyp"),
    "site": ("sitename", "site", "standort"),
    "room": ("roomname", "room", "raum", "raumname"),
    "lens_device_id": ("lensdeviceid", "deviceid", "id", "gerateid", "geraeteid"),
    "device_name": ("devicename", "name", "geratename", "geraetename"),
}
RMA_ALIASES: dict[str, tuple[str, ...]] = {
    "rma_number": ("rmanumber", "rmano", "rmanr", "rma", "rmaid", "rmanummer"),
    "rma_date": ("date", "rmadate", "createddate", "created", "datum", "rmadatum"),
    "serial": INVENTORY_ALIASES["serial"],
    "model": INVENTORY_ALIASES["model"],
}
SEPARATORS = (",", ";", "\t")
MAX_FIELD_CHARS = 100_000
MAX_LINE_CHARS = 1_000_000
MAX_COLUMNS = 1_000
# NUL, control characters JSON escapes differently in Python and DuckDB (\u000b, \u000B), and
# the white space besides space and tab that the reference reader trims.
_CONTROL_CHARACTERS = [chr(c) for c in range(32) if chr(c) not in "\t\n\r"]
# What str.strip() trims, spelled out for SQL's trim(cell, characters).
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# Of those, what DuckDB's plain trim(cell) leaves (it trims the Unicode spaces).
_NOT_TRIMMED_BY_DUCKDB = ("\t", "\x85", "\u2028", "\u2029")
MAX_ZIP_ENTRIES = 100
MAX_ZIP_RATIO = 100  # CSV compresses 5-20 fold; far more is a zip bomb
ZIP_RATIO_FREE_BYTES = 1 << 20  # tiny entries may compress better, harmlessly
MAX_UNZIPPED_BYTES = 2 << 30
# The raw layer's inventory columns, as a Lens pull's raw file holds them (sql/stage_inventory_csv.sql).
RAW_COLUMNS = ("row_number", *INVENTORY_ALIASES, "extra_json")


class UnreadableExport(Exception):
    """The file as a whole cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class ParsedExport:
    rows: pd.DataFrame  # row_number + one column per field + extra_json
    encoding: str
    separator: str
    columns: dict[str, str]  # field -> the header it was read from


def header_key(header: str) -> str:
    """A header as aliases are written: accents folded ("Gerätetyp" → "geratetyp"), then
    letters and digits only, lower case."""
    folded = unicodedata.normalize("NFKD", header.lower())
    return re.sub(r"[^a-z0-9]", "", folded)


def decode_export(raw: bytes) -> tuple[str, str]:
    """The text of an export and the encoding it was in."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode(raw[len(codecs.BOM_UTF8):], "utf-8"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(raw, "utf-16"), "utf-16"
    head = raw[:4096]
    if b"\x00" in head:
        # UTF-16 without BOM: every other byte of ASCII text is zero.
        if head[1::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-le"), "utf-16-le"
        if head[0::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-be"), "utf-16-be"
        raise UnreadableExport("this is not a text file (it contains binary data); "
                               "export the device list from Poly Lens as CSV")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode(raw, "cp1252"), "cp1252"


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise UnreadableExport(f"the text is not valid {encoding} (byte {error.start}); "
                               f"save the export as UTF-8 CSV") from None


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


@dataclass(frozen=True)
class _Source:
    """One CSV of an upload, decoded: the file itself, or an entry of a `.zip`."""
    label: str  # how messages name it: "" for a plain file, "in zip entry 'x.csv': " in a zip
    entry: str | None
    path: Path
    text: str
    encoding: str


@dataclass
class _Table:
    source: _Source
    headers: list[str]
    header_row: int
    columns: dict[str, int]
    separator: str
    reader: Iterator[list[str]]  # positioned after the header record
    lines_read: int  # physical lines up to and including the header

    def require(self, field: str, problem: str) -> None:
        if field not in self.columns:
            raise UnreadableExport(
                f"{self.source.label}{problem} in the header row (row {self.header_row}), found: "
                f"{', '.join(repr(h) for h in self.headers) or 'nothing'}")

    def records(self) -> list[tuple[int, list[str]]]:
        """The data records after the header, numbered as a spreadsheet shows them (blank
        records keep their number but are left out)."""
        label, records, row_number = self.source.label, [], self.header_row
        try:
            for record in self.reader:
                row_number += 1
                if not any(cell.strip() for cell in record):
                    continue
                _check_width(label, row_number, record)
                records.append((row_number, record))
        except csv.Error as error:
            raise UnreadableExport(f"{label}row {row_number + 1}: the CSV structure is broken "
                                   f"({error}); re-export the file") from None
        return records


def _check_width(label: str, row_number: int, record: list[str]) -> None:
    if len(record) > MAX_COLUMNS:
        raise UnreadableExport(f"{label}row {row_number} has {len(record):,} columns (at most "
                               f"{MAX_COLUMNS} make sense): this is not a device export")


def _read_source(path: Path, entry: str | None = None) -> _Source:
    label = f"in zip entry {entry!r}: " if entry else ""
    try:
        text, encoding = decode_export(path.read_bytes())
    except UnreadableExport as error:
        raise UnreadableExport(f"{label}{error}") from None
    if len(text) > MAX_LINE_CHARS:  # only then can a line be too long
        lengths = list(map(len, text.split("\n")))
        if max(lengths) > MAX_LINE_CHARS:
            line = next(n for n, length in enumerate(lengths, 1) if length > MAX_LINE_CHARS)
            raise UnreadableExport(f"{label}line {line} is longer than {MAX_LINE_CHARS:,} "
                                   f"characters: this is not a device export")
    return _Source(label, entry, path, text, encoding)


def _open_table(source: _Source, aliases: dict[str, tuple[str, ...]]) -> _Table:
    """The table's header: the first record that is not blank."""
    separator = _separator(source.text)
    lines = io.StringIO(source.text, newline="")
    reader = csv.reader(lines, delimiter=separator)
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # spreadsheet numbering: blank lines keep their row
            if any(cell.strip() for cell in record):
                _check_width(source.label, row_number, record)
                headers = [cell.strip() for cell in record]
                return _Table(source, headers, row_number, _map_columns(headers, aliases),
                              separator, reader, reader.line_num)
    except csv.Error as error:
        raise UnreadableExport(f"{source.label}row {row_number + 1}: the CSV structure is "
                               f"broken ({error}); re-export the file") from None
    raise UnreadableExport(f"{source.label}the file is empty: no header row")


@contextmanager
def _sources(path: Path, scratch: Path | None = None) -> Iterator[list[_Source]]:
    """The CSV sources of an upload: the file itself, or each CSV inside a `.zip`, extracted
    to a private folder in `scratch` (kept), or one that lives as long as the context."""
    if path.suffix.lower() in (".xlsx", ".xls", ".xlsm", ".numbers", ".ods"):
        raise UnreadableExport("this is a spreadsheet workbook, not CSV: export the device "
                               "list from Poly Lens as CSV (or save the sheet as CSV)")
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise UnreadableExport("the zip file is damaged (perhaps cut off during the "
                                   "upload): zip the export again or upload the CSV")
        yield [_read_source(path)]
        return
    if scratch is not None:
        private = tempfile.mkdtemp(prefix="zip-", dir=scratch)
        yield [_read_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]
        return
    with tempfile.TemporaryDirectory(prefix="polyrecon-zip-") as private:
        yield [_read_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]


def _unzip(path: Path, folder: Path) -> list[tuple[str, Path]]:
    """Copy a zip's CSV entries into `folder` under names of our own (so no entry name can
    reach outside it), bounded in entry count, size and compression ratio."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise UnreadableExport(f"the zip holds {len(entries):,} entries (at most "
                                       f"{MAX_ZIP_ENTRIES}): upload the CSV exports themselves")
            wanted = [e for e in entries if not e.is_dir() and not e.filename.startswith(
                "__MACOSX/") and e.filename.lower().endswith((".csv", ".txt", ".tsv"))]
            if not wanted:
                names = ", ".join(repr(e.filename) for e in entries[:5]) or "nothing"
                raise UnreadableExport(f"the zip holds no CSV file (found {names}); zip the "
                                       f"Lens CSV export itself")
            extracted, total = [], 0
            for number, entry in enumerate(wanted, start=1):
                if entry.flag_bits & 0x1:
                    raise UnreadableExport(f"zip entry {entry.filename!r} is encrypted: upload "
                                           f"it without a password")
                target = folder / f"entry-{number:03d}.csv"
                total = _copy_bounded(archive, entry, target, total)
                extracted.append((entry.filename, target))
            return extracted
    except UnreadableExport:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
            OSError, NotImplementedError, ValueError, RuntimeError, IndexError, KeyError,
            OverflowError) as error:  # a damaged zip breaks zipfile in many ways
        raise UnreadableExport(f"the zip file is damaged or uses a feature we cannot read "
                               f"({type(error).__name__}); zip it again or upload the CSV"
                               ) from None


def _copy_bounded(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path,
                  total: int) -> int:
    written = 0
    with archive.open(entry) as source, target.open("wb") as sink:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            total += len(chunk)
            if written > ZIP_RATIO_FREE_BYTES and written > entry.compress_size * MAX_ZIP_RATIO:
                raise UnreadableExport(f"zip entry {entry.filename!r} expands more than "
                                       f"{MAX_ZIP_RATIO}-fold: refused as a possible zip bomb")
            if total > MAX_UNZIPPED_BYTES:
                raise UnreadableExport(f"the zip expands to more than "
                                       f"{MAX_UNZIPPED_BYTES // 2**30} GiB: upload the CSV "
                                       f"exports themselves")
            sink.write(chunk)
    return total


def _extra_json(values: dict[str, str]) -> str:
    # Compact, sorted and unescaped as DuckDB's to_json writes it (sql/stage_export_cells.sql).
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _frame(table: _Table, fields: tuple[str, ...]) -> pd.DataFrame:
    records, headers = table.records(), table.headers
    used = set(table.columns.values())
    data: dict[str, list] = {"row_number": [n for n, _ in records]}
    for field in fields:
        index = table.columns.get(field)
        data[field] = [(cells[index].strip()
                        if index is not None and index < len(cells) else None)
                       for _, cells in records]
    extra_base = {"zip_entry": table.source.entry} if table.source.entry else {}
    data["extra_json"] = [
        _extra_json({**extra_base, **{(headers[i] if i < len(headers) else f"column {i + 1}"): cell
                                      for i, cell in enumerate(cells)
                                      if i not in used and (i < len(headers)
                                                            or cell.strip())}})
        for _, cells in records]
    return pd.DataFrame(data)


def _parsed(tables: list[_Table], fields: tuple[str, ...], drop: tuple[str, ...] = ()
            ) -> ParsedExport:
    frames = [_frame(table, fields).drop(columns=list(drop)) for table in tables]
    first = tables[0]
    return ParsedExport(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0],
                        first.source.encoding, first.separator,
                        {field: first.headers[i] for field, i in first.columns.items()})


def _inventory_tables(sources: list[_Source]) -> list[_Table]:
    tables = [_open_table(source, INVENTORY_ALIASES) for source in sources]
    for table in tables:
        table.require("model", "no model column: expected one of 'Device Type', 'Model', "
                               "'Model Name', 'hardwareModel', 'Product', 'device_model' or "
                               "'Modell'")
        if not {"serial", "mac", "lens_device_id"} & table.columns.keys():
            table.require("serial", "no device identity column: expected a serial number "
                                    "('Serial Number', 'Seriennummer'), MAC address ('MAC "
                                    "Address', 'MAC-Adresse') or Lens device id ('Device ID') "
                                    "column")
    return tables


def read_inventory_export(path: Path) -> ParsedExport:
    """A Lens device export (or a zip of them): a model column, and a serial, MAC or Lens id
    column. Raises `UnreadableExport`, and nothing else, for anything it cannot use.

    This is the reference reader, record by record in Python; `plan_inventory_export` with
    export_staging.py gives the same rows, mostly through DuckDB's CSV reader."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with _sources(path) as sources:
        return _parsed(_inventory_tables(sources), tuple(INVENTORY_ALIASES))


def read_rma_log(path: Path) -> ParsedExport:
    """An RMA log: rma number, date (YYYY-MM-DD), serial, model."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with _sources(path) as sources:
        tables = [_open_table(source, RMA_ALIASES) for source in sources]
        for table in tables:
            for field, header in (("rma_number", "'rma_number'"), ("rma_date", "'date'"),
                                  ("model", "'model'")):
                table.require(field, f"not an RMA log: no {header} column")
        return _parsed(tables, tuple(RMA_ALIASES), drop=("extra_json",))


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

    def extra_columns(self) -> dict[str, int]:
        """The unused columns kept in extra_json, header -> 1-based index (0: zip entry name),
        in the order `_extra_json` writes them."""
        used = {index for _, index in self.columns}
        extra = {"zip_entry": 0} if self.entry else {}
        extra.update({header: index + 1 for index, header in enumerate(self.headers)
                      if index not in used})
        return dict(sorted(extra.items()))


@dataclass(frozen=True)
class ExportPlan:
    tables: tuple[TablePlan, ...]

    @property
    def data_lines(self) -> int:
        return sum(table.data_lines for table in self.tables)


def plan_inventory_export(path: Path, scratch: Path) -> ExportPlan:
    """An inventory export's tables with their headers read and checked, without reading the
    rows (export_staging.py does, many exports at a time). Raises `UnreadableExport` as
    `read_inventory_export` does for anything wrong with the file as a whole or its header.
    Zip entries and text not in UTF-8 are written to `scratch` as UTF-8 files."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    with _sources(path, scratch) as sources:
        tables = _inventory_tables(sources)
        return ExportPlan(tuple(_plan(table, scratch) for table in tables))


def _plan(table: _Table, scratch: Path) -> TablePlan:
    source, text = table.source, table.source.text
    path = source.path
    if source.encoding not in ("utf-8", "utf-8-sig"):  # DuckDB reads UTF-8 (a BOM sits in
        handle, name = tempfile.mkstemp(suffix=".csv", dir=scratch)  # the skipped header)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as copy:
            copy.write(text)
        path = Path(name)
    readable = (table.lines_read == table.header_row
                and not any(character in text for character in _CONTROL_CHARACTERS)
                and ("\r" not in text or text.count("\r") == text.count("\r\n")))
    return TablePlan(source.entry, source.path, path, table.separator, tuple(table.headers),
                     table.header_row, tuple(table.columns.items()),
                     text.count("\n") + (not text.endswith("\n")) - table.lines_read, readable,
                     _trimming(text, table.separator))


def _trimming(text: str, separator: str) -> str:
    """How cells must be trimmed to match str.strip() (TablePlan.trim). (Telling which files
    need no trimming at all costs more in substring tests than the trimming itself.)"""
    if any(character in text for character in _NOT_TRIMMED_BY_DUCKDB[1:]) or (
            "\t" in text if separator != "\t" else '"' in text):  # a tab in a cell is quoted
        return "all"
    return "spaces"


def read_planned_table(table: TablePlan) -> pd.DataFrame:
    """A planned table's rows by the reference reader (the path DuckDB declined)."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    opened = _open_table(_read_source(table.source, table.entry), INVENTORY_ALIASES)
    return _frame(opened, tuple(INVENTORY_ALIASES))


# --- the Lens GraphQL API ---------------------------------------------------------------------

# The tenant-scoped device search of Lens's public clients (polylens2otel, lensctl-ops-deck),
# asking for the query-cost budget in the same document as lensctl-ops-deck does, and for the
# search's own `error` field, which Lens fills instead of failing the whole answer.
DEVICE_SEARCH = """
query PolyreconDeviceSearch($tenantId: ID!, $params: DeviceFindArgs) {
  calculateQueryCost { queryCost costUsed costRemaining secondsToReset }
  tenant(id: $tenantId) {
    inventory {
      deviceSearch(params: $params) {
        edges {
          node {
            id name serialNumber macAddress hardwareFamily hardwareModel hardwareProduct
            productId softwareVersion connected lastDetected
            site { id name }
            room { id name }
          }
        }
        pageInfo { hasNextPage nextToken totalCount }
        error
      }
    }
  }
}
"""
# A stable order for paging: a nextToken walks one order from page to page (AVI-SPL's adapter
# sends exactly this with every page).
DEVICE_SORT = {"fields": [{"name": "id", "direction": "ASC"}]}
# The budget is spent per rolling minute; wait for it rather than be refused, when what is left
# would not pay for another page with a margin (lensctl-ops-deck's rule).
COST_MARGIN = 1.2
LONGEST_BUDGET_WAIT = 65.0  # seconds: the budget window is 60 s
# How Lens words a spent budget in an HTTP 400 (polylens2otel reads these three).
_RATE_LIMIT_WORDS = ("rate limit", "rate-limit", "over limit")
_AUTH_MESSAGES = ("you must be logged in", "authorization failed", "unauthorized",
                  "unauthenticated", "token expired")


class LensError(Exception):
    """A pull that cannot complete; the message names what failed, never a secret."""


@dataclass(frozen=True)
class LensCredentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return f"LensCredentials(client_id={self.client_id!r}, client_secret='***')"

    @classmethod
    def from_env(cls) -> "LensCredentials | None":
        client_id = os.environ.get("LENS_CLIENT_ID", "").strip()
        secret = os.environ.get("LENS_CLIENT_SECRET", "").strip()
        return cls(client_id, secret) if client_id and secret else None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    first_wait: float = 0.5  # seconds; doubled each attempt, with full jitter
    longest_wait: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    budget_pad: float = 2.0  # seconds waited past the query budget's reset, for clock skew


@dataclass(frozen=True)
class DevicePage:
    nodes: list[dict]
    total_count: int


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class LensClient:
    """OAuth2 client credentials, a cached token renewed before expiry (and once more on an
    authentication error), timeouts, and retries with exponential backoff and jitter on
    connection errors, 5xx, 429 (honouring Retry-After) and 400 answers that say the rate limit
    is reached; and it waits for the query-cost budget when a page would overspend it."""

    def __init__(self, token_url: str, graphql_url: str, credentials: LensCredentials,
                 retry: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.token_url, self.graphql_url = token_url, graphql_url
        self._credentials, self._retry, self._sleep, self._clock = credentials, retry, sleep, clock
        self._session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0

    def close(self) -> None:
        self._session.close()

    def device_pages(self, tenant_id: str, page_size: int) -> Iterator[DevicePage]:
        """Every page of the tenant's inventory; complete or an error, never silently short."""
        next_token = None
        while True:
            params = {"pageSize": page_size, "sort": DEVICE_SORT}
            if next_token:
                params["nextToken"] = next_token
            data = self.query(DEVICE_SEARCH, {"tenantId": tenant_id, "params": params})
            tenant = (data or {}).get("tenant")
            if tenant is None:
                raise LensError(f"Lens knows no tenant {tenant_id!r} (or these credentials "
                                f"cannot reach it)")
            try:
                search = tenant["inventory"]["deviceSearch"]
                if search.get("error"):
                    raise LensError(f"Lens could not search the inventory: "
                                    f"{_error_text(search['error'])}")
                info = search["pageInfo"]
                page = DevicePage([edge["node"] for edge in search["edges"]],
                                  int(info["totalCount"]))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise LensError(f"unexpected answer from Lens (no {error} in deviceSearch)"
                                ) from None
            yield page
            if not info["hasNextPage"]:
                return
            self._respect_budget(data.get("calculateQueryCost"))
            next_token = info.get("nextToken")
            if not next_token:
                raise LensError("Lens said there is a next page but gave no nextToken; "
                                "the inventory cannot be read completely")

    def _respect_budget(self, cost) -> None:
        """Wait for the query-cost budget to reset when it would not pay for the next page."""
        try:
            remaining, needed = float(cost["costRemaining"]), float(cost["queryCost"])
            reset = cost.get("secondsToReset")
            reset = 60.0 if reset is None else float(reset)
        except (KeyError, TypeError, ValueError):
            return  # no budget reported: Lens answers HTTP 400 "over limit" instead, retried
        if remaining < needed * COST_MARGIN:
            wait = min(max(reset, 0.0) + self._retry.budget_pad, LONGEST_BUDGET_WAIT)
            log.info("Lens API: query budget nearly spent (%g left, a page costs %g); waiting "
                     "%.0f s for it to reset", remaining, needed, wait)
            self._sleep(wait)

    def query(self, query: str, variables: dict) -> dict:
        """The `data` of a GraphQL answer; its `errors` become one LensError."""
        renewed = False
        for attempt in range(1, self._retry.attempts + 1):
            try:
                body = self._post_graphql(query, variables)
            except _AuthenticationFailed:
                if renewed:
                    raise LensError("Lens rejected a freshly issued token (check the API "
                                    "client's permissions)") from None
                self._token, renewed = None, True
                continue
            except _Retry as retry:
                if attempt == self._retry.attempts:
                    raise LensError(f"Lens API still failing after {attempt} attempts: "
                                    f"{retry.reason}") from None
                self._wait(attempt, retry)
                continue
            errors = body.get("errors") or []
            if errors:
                messages = "; ".join(str(e.get("message", e)) for e in errors)
                if any(m in messages.lower() for m in _AUTH_MESSAGES) and not renewed:
                    self._token, renewed = None, True
                    continue
                raise LensError(f"Lens answered with an error: {messages}")
            return body.get("data") or {}
        raise LensError("Lens API: no answer after renewing the token")

    def _wait(self, attempt: int, retry: _Retry) -> None:
        if retry.wait is not None:
            wait = min(retry.wait, self._retry.longest_wait)
        else:
            ceiling = min(self._retry.longest_wait, self._retry.first_wait * 2 ** (attempt - 1))
            wait = random.uniform(ceiling / 2, ceiling)
        log.info("Lens API: %s; retrying in %.1f s (attempt %d of %d)", retry.reason, wait,
                 attempt + 1, self._retry.attempts)
        self._sleep(wait)

    def _post_graphql(self, query: str, variables: dict) -> dict:
        token = self._current_token()
        response = self._post(self.graphql_url, {"query": query, "variables": variables},
                              headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401 or response.status_code == 403:
            raise _AuthenticationFailed()
        return _json_body(response, "GraphQL")

    def _current_token(self) -> str:
        # Renew ahead of expiry: Lens tokens last a day and there is no refresh token.
        if self._token and self._clock() < self._token_expires:
            return self._token
        for attempt in range(1, self._retry.attempts + 1):
            try:
                response = self._post(self.token_url, {
                    "client_id": self._credentials.client_id,
                    "client_secret": self._credentials.client_secret,
                    "grant_type": "client_credentials"})
                if response.status_code in (400, 401, 403) and not _is_rate_limit(response):
                    raise LensError(f"Lens refused the API client credentials (HTTP "
                                    f"{response.status_code}); check LENS_CLIENT_ID and "
                                    f"LENS_CLIENT_SECRET")
                body = _json_body(response, "token")
                lifetime = float(body.get("expires_in", 3600))
                self._token = body["access_token"]
                self._token_expires = self._clock() + max(lifetime - max(60.0, lifetime / 10),
                                                           lifetime / 2)
                return self._token
            except _Retry as retry:
                if attempt == self._retry.attempts:
                    raise LensError(f"Lens token endpoint still failing after {attempt} "
                                    f"attempts: {retry.reason}") from None
                self._wait(attempt, retry)
            except KeyError:
                raise LensError("Lens token endpoint answered without an access_token") from None
        raise AssertionError("unreachable")

    def _post(self, url: str, payload: dict, headers: dict | None = None) -> requests.Response:
        try:
            response = self._session.post(
                url, json=payload, headers=headers,
                timeout=(self._retry.connect_timeout, self._retry.read_timeout))
        except requests.Timeout:
            raise _Retry("timed out") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as error:
            raise _Retry(f"connection lost ({type(error).__name__})") from None
        if response.status_code == 429 or _is_rate_limit(response):
            raise _Retry(f"rate limited (HTTP {response.status_code})",
                         _retry_after(response))
        if response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}")
        return response


class _AuthenticationFailed(Exception):
    pass


def _is_rate_limit(response: requests.Response) -> bool:
    if response.status_code != 400:
        return False
    text = response.text.lower()
    return any(words in text for words in _RATE_LIMIT_WORDS)


def _error_text(error) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _json_body(response: requests.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        if response.status_code >= 400:
            raise LensError(f"Lens {what} request failed with HTTP {response.status_code}"
                            ) from None
        raise _Retry(f"the {what} answer was not complete JSON") from None
    if not isinstance(body, dict):
        raise LensError(f"unexpected {what} answer from Lens (HTTP {response.status_code})")
    if response.status_code >= 400 and not body.get("errors"):
        raise LensError(f"Lens {what} request failed with HTTP {response.status_code}")
    return body


def device_row(position: int, node: dict) -> dict:
    """A Lens device node as a raw inventory row (same columns as a CSV export)."""
    site, room = node.get("site") or {}, node.get("room") or {}
    extra = {key: node.get(key) for key in ("hardwareFamily", "hardwareProduct", "productId",
                                            "softwareVersion", "connected", "lastDetected")}
    extra.update(site_id=site.get("id"), room_id=room.get("id"))
    return {"row_number": position, "serial": node.get("serialNumber"),
            "mac": node.get("macAddress"),
            # Lens's product id is the model's name for room systems and phones ("Edge E350"):
            # the model when the node has no hardwareModel.
            "model": node.get("hardwareModel") or node.get("hardwareProduct")
            or node.get("productId"),
            "site": site.get("name"), "room": room.get("name"),
            "lens_device_id": node.get("id"), "device_name": node.get("name"),
            "extra_json": json.dumps(extra, ensure_ascii=False, sort_keys=True)}
