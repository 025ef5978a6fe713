"""Calendar months (`YYYY-MM`), the unit every rule and partition is keyed by."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from pipelines.core.i18n import N_, Message

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.fullmatch(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a month (expected YYYY-MM, e.g. 2026-10)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def months_until(self, other: Month) -> int:
        """How many months `other` lies after this one (negative when before)."""
        return (other.year * 12 + other.month) - (self.year * 12 + self.month)


def month_range(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, both included; empty when last < first."""
    return [first.plus(i) for i in range(first.months_until(last) + 1)]


# The month names partners type into file names, English and German, full and abbreviated.
_MONTH_NAMES = {
    1: ("january", "januar", "jan", "jän"), 2: ("february", "februar", "feb"),
    3: ("march", "märz", "maerz", "mar", "mär", "mrz"), 4: ("april", "apr"), 5: ("may", "mai"),
    6: ("june", "juni", "jun"), 7: ("july", "juli", "jul"), 8: ("august", "aug"),
    9: ("september", "sept", "sep"), 10: ("october", "oktober", "oct", "okt"),
    11: ("november", "nov"), 12: ("december", "dezember", "dec", "dez")}
_NAMED = {name: number for number, names in _MONTH_NAMES.items() for name in names}
# In the order they are looked for: YYYY-MM anywhere in the name wins over the other forms
# ("site-10-2026-03.csv" is March); followed by a day (YYYY-MM-DD) it is a full date. Years are
# 20xx; a month must not follow a letter or digit ("TC10-2026", "Edge B10-2026" hold no month).
# A German date (DD.MM.YYYY) is a full date too.
_YEAR_MONTH = re.compile(
    r"(?<!\d)(20\d\d)[-_](0[1-9]|1[0-2])(?:[-_](0[1-9]|[12]\d|3[01]))?(?!\d)")
_MONTH_YEAR = re.compile(
    r"(?<![0-9A-Za-z])(?:(0?[1-9]|[12]\d|3[01])\.)?(0[1-9]|1[0-2])[.-](20\d\d)(?!\d)")
_NAMED_MONTH = re.compile(
    r"(?<![^\W\d_])(" + "|".join(sorted(_NAMED, key=len, reverse=True)) +
    r")[\s._-]*(20\d\d)(?!\d)", re.IGNORECASE)
MONTH_FORMS = "2026-03, 2026_03, 03.2026, 03-2026, März 2026 or March 2026"


def export_month(day: date, window_days: int) -> Month:
    """The month an export made on `day` shows: within the first `window_days` days of a
    month, the month before (interfaces.md: as a Lens pull is attributed)."""
    return Month.of(day).plus(-1) if day.day <= window_days else Month.of(day)


def _full_date(year: str, month: str, day: str | None) -> date | None:
    try:
        return date(int(year), int(month), int(day)) if day else None
    except ValueError:  # no such day (2026-02-30): the month alone
        return None


def _month_found(name: str, window_days: int) -> tuple[Month, tuple[int, int]] | None:
    """The month a name holds and where it stands in the name."""
    if found := _YEAR_MONTH.search(name):
        year, month, day = found.groups()
    elif found := _MONTH_YEAR.search(name):
        day, month, year = found.groups()
    elif found := _NAMED_MONTH.search(name):
        return Month(int(found[2]), _NAMED[found[1].lower()]), found.span()
    else:
        return None
    exported = _full_date(year, month, day)
    if exported is not None:
        return export_month(exported, window_days), found.span()
    return Month(int(year), int(month)), found.span()


def month_in_name(name: str, window_days: int = 0) -> Month | None:
    """The month a file name holds, in any of MONTH_FORMS (interfaces.md: it decides the
    file's month); YYYY-MM first, then MM.YYYY / MM-YYYY, then a month's name. A full date
    is the export date (`export_month` with `window_days`, lens.pull_window_days; callers
    that only ask whether a name holds a month need not give it)."""
    found = _month_found(name, window_days)
    return found[0] if found else None


def renamed_for(name: str, month: Month | str) -> str:
    """`name` with `month` (YYYY-MM) where it holds its month, else before its extension:
    the name a held file is told to take."""
    found = _month_found(name, 0)
    if found is None:
        stem, dot, suffix = name.rpartition(".")
        return f"{stem} {month}.{suffix}" if dot and stem else f"{name} {month}"
    start, end = found[1]
    return f"{name[:start]}{month}{name[end:]}"


def month_by_modification(month: Month | str) -> Message:
    return Message.of(N_("the name holds no month, so it was taken for %(month)s by the day it "
                         "was last changed: to choose another, put the month in the name "
                         "(%(forms)s)"), month=str(month), forms=MONTH_FORMS)
