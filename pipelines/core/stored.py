"""Dataclasses of plain values as JSON and back, exactly: a result computed once is stored and
read again by other processes (the DAG's render tasks) without recomputing it.

Decimals and fractions travel as text, months as YYYY-MM; every field is read back as the type
its annotation names, so the stored form never turns an amount into a float.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from decimal import Decimal
from fractions import Fraction
from functools import cache

from pipelines.core.months import Month

_READ = {Month: Month.parse, Fraction: Fraction, Decimal: Decimal, int: int, str: str}


def plain(item) -> dict:
    """A dataclass instance as JSON-ready values."""
    return {f.name: _plain_value(getattr(item, f.name)) for f in dataclasses.fields(item)}


def _plain_value(value):
    if isinstance(value, Month | Decimal | Fraction):
        return str(value)
    return value


def typed(kind, values: dict):
    """The dataclass `kind` from `plain()`'s values."""
    readers = _readers(kind)
    return kind(**{name: None if value is None else readers[name](value)
                   for name, value in values.items()})


@cache
def _readers(kind) -> dict:
    readers = {}
    for name, hint in typing.get_type_hints(kind).items():
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        [base] = [option for option in options if option is not type(None)]
        readers[name] = _READ[base]
    return readers
