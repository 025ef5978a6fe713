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


_MONTH_IN_NAME = re.compile(r"(?<!\d)(\d{4})-(0[1-9]|1[0-2])(?!\d)")


def month_in_name(name: str) -> Month | None:
    """The first `YYYY-MM` in a file name (interfaces.md: it decides the file's month)."""
    match = _MONTH_IN_NAME.search(name)
    return Month(int(match.group(1)), int(match.group(2))) if match else None
