"""Months as YYYY-MM text and files written byte for byte with a fixed modification time.

The demo, and the benchmark's large partner, must give the same bytes and the same mtimes
for the same arguments; every file they write goes through `write_file`.
"""
from __future__ import annotations

import calendar
import csv
import io
import os
from pathlib import Path

from pipelines.core.months import Month

_GERMAN_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                  "September", "Oktober", "November", "Dezember")


def add_months(month: str, count: int) -> str:
    return str(Month.parse(month).plus(count))


def days_in(month: str) -> int:
    return Month.parse(month).last_day.day


def german_month(month: str) -> str:
    """"März 2026": how a German-speaking partner names a month in a file name."""
    parsed = Month.parse(month)
    return f"{_GERMAN_MONTHS[parsed.month - 1]} {parsed.year}"


def epoch(month: str, day: int, hour: int, minute: int = 0) -> int:
    """Seconds since 1970 (UTC) of a moment in `month`: a file's modification time."""
    parsed = Month.parse(month)
    return calendar.timegm((parsed.year, parsed.month, day, hour, minute, 0))


def write_file(path: Path, text: str, encoding: str, mtime: int) -> None:
    path.write_bytes(text.encode(encoding))
    os.utime(path, (mtime, mtime))


def csv_text(rows: list[list[str]], separator: str, line_end: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator=line_end).writerows(rows)
    return buffer.getvalue()
