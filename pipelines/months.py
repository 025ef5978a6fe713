"""Calendar months (`YYYY-MM`), the unit every rule and partition is keyed by."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Month":
        match = _MONTH.fullmatch(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a month (expected YYYY-MM, e.g. 2026-10)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> "Month":
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def plus(self, months: int) -> "Month":
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def months_until(self, other: "Month") -> int:
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
_MONTH_IN_NAME = re.compile(
    r"(?<!\d)(?P<year>\d{4})[-_](?P<month>0[1-9]|1[0-2])(?!\d)"          # 2026-03, 2026_03
    r"|(?<!\d)(?P<month2>0[1-9]|1[0-2])[.-](?P<year2>\d{4})(?!\d)"        # 03.2026, 03-2026
    r"|(?<![^\W\d_])(?P<name>" + "|".join(sorted(_NAMED, key=len, reverse=True)) +
    r")[\s._-]*(?P<year3>\d{4})(?!\d)",                                   # März 2026, March_2026
    re.IGNORECASE)
MONTH_FORMS = "2026-03, 2026_03, 03.2026, 03-2026, März 2026 or March 2026"


def month_in_name(name: str) -> Month | None:
    """The first month a file name holds, in any of MONTH_FORMS (interfaces.md: it decides
    the file's month)."""
    match = _MONTH_IN_NAME.search(name)
    if match is None:
        return None
    if match["year"]:
        return Month(int(match["year"]), int(match["month"]))
    if match["year2"]:
        return Month(int(match["year2"]), int(match["month2"]))
    return Month(int(match["year3"]), _NAMED[match["name"].lower()])
