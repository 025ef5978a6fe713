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
# ("site-10-2026-03.csv" is March). Years are 20xx; a month must not follow a letter or digit
# ("TC10-2026", "Edge B10-2026" hold no month).
_YEAR_MONTH = re.compile(r"(?<!\d)(20\d\d)[-_](0[1-9]|1[0-2])(?!\d)")
_MONTH_YEAR = re.compile(r"(?<![0-9A-Za-z])(0[1-9]|1[0-2])[.-](20\d\d)(?!\d)")
_NAMED_MONTH = re.compile(
    r"(?<![^\W\d_])(" + "|".join(sorted(_NAMED, key=len, reverse=True)) +
    r")[\s._-]*(20\d\d)(?!\d)", re.IGNORECASE)
MONTH_FORMS = "2026-03, 2026_03, 03.2026, 03-2026, März 2026 or March 2026"


def month_in_name(name: str) -> Month | None:
    """The month a file name holds, in any of MONTH_FORMS (interfaces.md: it decides the
    file's month); YYYY-MM first, then MM.YYYY / MM-YYYY, then a month's name."""
    if found := _YEAR_MONTH.search(name):
        return Month(int(found[1]), int(found[2]))
    if found := _MONTH_YEAR.search(name):
        return Month(int(found[2]), int(found[1]))
    if found := _NAMED_MONTH.search(name):
        return Month(int(found[2]), _NAMED[found[1].lower()])
    return None


def month_by_modification(month: Month | str) -> Message:
    return Message.of(N_("the name holds no month, so it was taken for %(month)s, the month it "
                         "was last changed: to choose another, put the month in the name "
                         "(%(forms)s)"), month=str(month), forms=MONTH_FORMS)
