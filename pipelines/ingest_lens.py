"""Reading what Poly Lens gives us: device exports (CSV) and, from the drop folder, RMA logs.

A Lens export arrives in whatever shape the partner's tool produced: comma, semicolon or tab
separated; UTF-8 with or without BOM, UTF-16 or Windows-1252; headers in Lens UI, API or
snake_case style. Headers are matched case- and punctuation-insensitively against aliases.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

INVENTORY_ALIASES: dict[str, tuple[str, ...]] = {
    # field: header aliases, normalised (lower case, letters and digits only), best first
    "serial": ("serialnumber", "serial", "serialno"),
    "mac": ("macaddress", "mac"),
    "model": ("devicemodel", "model", "hardwaremodel", "product", "hardwareproduct"),
    "site": ("sitename", "site"),
    "room": ("roomname", "room"),
    "lens_device_id": ("lensdeviceid", "deviceid", "id"),
    "device_name": ("devicename", "name"),
}
RMA_ALIASES: dict[str, tuple[str, ...]] = {
    "rma_number": ("rmanumber", "rmano", "rmanr", "rma", "rmaid"),
    "rma_date": ("date", "rmadate", "createddate", "created"),
    "serial": INVENTORY_ALIASES["serial"],
    "model": INVENTORY_ALIASES["model"],
}
SEPARATORS = (",", ";", "\t")
MAX_FIELD_CHARS = 100_000


class UnreadableExport(Exception):
    """The file as a whole cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class ParsedExport:
    rows: pd.DataFrame  # row_number + one column per field + extra_json
    encoding: str
    separator: str
    columns: dict[str, str]  # field -> the header it was read from


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


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


def _read_table(path: Path, aliases: dict[str, tuple[str, ...]]
                ) -> tuple[list[str], dict[str, int], list[tuple[int, list[str]]], str, str]:
    text, encoding = decode_export(path.read_bytes())
    separator = _separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    headers: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # spreadsheet numbering: blank lines keep their row
            if not any(cell.strip() for cell in record):
                continue
            if headers is None:
                headers = [cell.strip() for cell in record]
                continue
            records.append((row_number, record))
    except csv.Error as error:
        raise UnreadableExport(f"row {row_number + 1}: the CSV structure is broken ({error}); "
                               f"re-export the file") from None
    if headers is None:
        raise UnreadableExport("the file is empty: no header row")
    return headers, _map_columns(headers, aliases), records, encoding, separator


def _frame(headers: list[str], columns: dict[str, int], records: list[tuple[int, list[str]]],
           fields: tuple[str, ...]) -> pd.DataFrame:
    used = set(columns.values())
    data: dict[str, list] = {"row_number": [n for n, _ in records]}
    for field in fields:
        index = columns.get(field)
        data[field] = [(cells[index].strip() if index is not None and index < len(cells) else None)
                       for _, cells in records]
    data["extra_json"] = [
        json.dumps({(headers[i] if i < len(headers) else f"column {i + 1}"): cell
                    for i, cell in enumerate(cells)
                    if i not in used and (i < len(headers) or cell.strip())},
                   ensure_ascii=False, sort_keys=True)
        for _, cells in records]
    return pd.DataFrame(data)


def read_inventory_export(path: Path) -> ParsedExport:
    """A Lens device export: needs a model column and a serial, MAC or Lens id column."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    headers, columns, records, encoding, separator = _read_table(path, INVENTORY_ALIASES)
    if "model" not in columns:
        raise UnreadableExport(
            f"no model column: expected one of 'device_model', 'Model', 'hardwareModel', "
            f"'Hardware Model' or 'Product' in the header row (row 1), found: "
            f"{', '.join(repr(h) for h in headers)}")
    if not {"serial", "mac", "lens_device_id"} & columns.keys():
        raise UnreadableExport(
            f"no device identity column: expected a serial number ('Serial Number'), MAC "
            f"address ('MAC Address') or Lens device id ('Device ID') column in the header row "
            f"(row 1), found: {', '.join(repr(h) for h in headers)}")
    frame = _frame(headers, columns, records, tuple(INVENTORY_ALIASES))
    return ParsedExport(frame, encoding, separator,
                        {field: headers[i] for field, i in columns.items()})


def read_rma_log(path: Path) -> ParsedExport:
    """An RMA log: rma number, date (YYYY-MM-DD), serial, model."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    headers, columns, records, encoding, separator = _read_table(path, RMA_ALIASES)
    missing = [field for field in ("rma_number", "rma_date", "model") if field not in columns]
    if missing:
        wanted = {"rma_number": "'rma_number'", "rma_date": "'date'", "model": "'model'"}
        raise UnreadableExport(
            f"not an RMA log: the header row (row 1) lacks "
            f"{', '.join(wanted[m] for m in missing)}; found: "
            f"{', '.join(repr(h) for h in headers)}")
    frame = _frame(headers, columns, records, tuple(RMA_ALIASES)).drop(columns="extra_json")
    return ParsedExport(frame, encoding, separator,
                        {field: headers[i] for field, i in columns.items()})
