"""CSV cells a spreadsheet would run as a formula, made harmless (OWASP "CSV injection").

A cell that came from input data (a partner's upload, configuration) and starts with `=`, `+`,
`-`, `@`, a tab or a carriage return is written with a leading `'`: Excel and LibreOffice then
show it as text. Numbers we compute (`-17.50`) are not input data and stay numbers: callers
pass only the columns that come from outside.
"""
from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
