"""The product catalog: the shipped file plus the workspace's overrides, checked row by row;
and the categories, listed once here for the contracts, the catalog and the results.

Matching a device model to a row (normalisation, brand prefixes and spacing variants, exact
before longest prefix) happens in SQL (`catalog_key` in sql/warehouse/rule_macros.sql,
`model_class` in sql/warehouse/views.sql), so one normaliser serves inventories, RMA logs and
the catalog.

A workspace catalog is often kept in Excel, and German Excel saves CSV with semicolons and
turns dates into 31.12.2026: such a file is read as it is (the separator is the one that makes
the header line `model,category,end_of_service`), so nobody has to fight their spreadsheet.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.core.errors import ConfigError

SHIPPED_CATALOG = Path(__file__).resolve().parents[2] / "data" / "product_catalog.csv"
# The categories a contract covers (rules.md), in the order every file and report lists them.
CATEGORIES = ("headset", "video", "voice")
# What a catalog row may say besides. not_counted: what Lens lists that is no covered device
# (accessories, Lens software, other makers' products): never counted, never a catalog gap,
# listed in the report on its own.
CATALOG_CATEGORIES = (*CATEGORIES, "quote_only", "not_counted")
# The rows of reconciliation.csv, in its order: a model no catalog row matches is unclassified.
ROW_CATEGORIES = (*CATEGORIES, "quote_only", "unclassified")
COLUMNS = ("model", "category", "end_of_service")
_SEPARATORS = (",", ";", "\t")
_GERMAN_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")


@dataclass(frozen=True)
class CatalogRow:
    model: str
    category: str
    end_of_service: date | None
    origin: str  # "shipped" or "workspace": a workspace row replaces a shipped one


def read_catalog_file(path: Path, origin: str) -> list[CatalogRow]:
    """Rows of one catalog file; lines starting with `#` are comments. Cells are separated by
    commas, semicolons or tabs, whichever the header line uses."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text; save it as UTF-8 CSV") from None
    lines = [line if not line.lstrip().startswith("#") else "" for line in text.splitlines()]
    reader = csv.reader(lines, delimiter=_separator(lines))
    header = None
    rows: list[CatalogRow] = []
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in record]
            if tuple(header[:3]) != COLUMNS:
                raise ConfigError(f"{path.name}: line {line}: the header must be "
                                  f"{','.join(COLUMNS)} (found {','.join(record)})")
            continue
        cells = dict(zip(COLUMNS, (cell.strip() for cell in record + [""] * 3), strict=False))
        rows.append(_checked_row(path, line, cells, origin))
    return rows


def _separator(lines: list[str]) -> str:
    """The separator that splits the header into the columns (a comma if none does: then the
    header check says what the header must be)."""
    header = next((line for line in lines if line.strip()), "")
    for separator in _SEPARATORS:
        cells = next(csv.reader([header], delimiter=separator))
        if tuple(cell.strip().lower() for cell in cells[:3]) == COLUMNS:
            return separator
    return ","


def _checked_row(path: Path, line: int, cells: dict[str, str], origin: str) -> CatalogRow:
    def fail(column: str, problem: str) -> ConfigError:
        return ConfigError(f"{path.name}: line {line}, column {column}: {problem}")

    if not cells["model"].rstrip("*").strip():
        raise fail("model", "the model is empty")
    category = cells["category"].lower()
    if category not in CATALOG_CATEGORIES:
        raise fail("category", f"{cells['category']!r} must be one of "
                               f"{', '.join(CATALOG_CATEGORIES)}")
    end_of_service = None
    if cells["end_of_service"]:
        try:
            end_of_service = _date(cells["end_of_service"])
        except ValueError:
            raise fail("end_of_service", f"{cells['end_of_service']!r} is not a date "
                                         f"(YYYY-MM-DD or DD.MM.YYYY, or empty)") from None
    return CatalogRow(cells["model"], category, end_of_service, origin)


def _date(text: str) -> date:
    """YYYY-MM-DD, or DD.MM.YYYY as German Excel writes dates."""
    german = _GERMAN_DATE.fullmatch(text)
    if german:
        day, month, year = (int(part) for part in german.groups())
        return date(year, month, day)
    return date.fromisoformat(text)


def load_catalog(workspace_catalog: Path | None) -> list[CatalogRow]:
    """Shipped rows, then the workspace's (which win over a shipped row of the same model)."""
    rows = read_catalog_file(SHIPPED_CATALOG, "shipped")
    if workspace_catalog is not None and workspace_catalog.exists():
        rows += read_catalog_file(workspace_catalog, "workspace")
    return rows
