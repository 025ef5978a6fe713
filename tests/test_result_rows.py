"""Result rows hold numbers; the edges (reconciliation.csv, rma.csv, e-mail ledger keys) see
them as they were always written, so an upgrade changes no file and sends nothing again. (The
warehouse stores the numbers themselves: tests/test_stored_result.py.)"""
from dataclasses import dataclass, fields
from decimal import Decimal

from pipelines.delivery.rekey import _keyed
from pipelines.reconciliation.results import ReconciliationRow, RmaRow, as_written

TRUE_UP_ROW = ReconciliationRow("acme", "2026-05", "video", "TRUE_UP", 106, 2, 100,
                                Decimal("105.00"), Decimal("6.00"), 6, Decimal("720.00"), "EUR",
                                106, Decimal("111.30"))
NO_DATA_ROW = ReconciliationRow("acme", "2026-06", "video", "NO_DATA", ordered_devices=106,
                                baseline=Decimal("111.30"), currency="EUR")


def test_a_row_holds_numbers_and_is_written_as_digits():
    assert isinstance(TRUE_UP_ROW.devices_counted, int)
    assert as_written(TRUE_UP_ROW)["prorated_amount"] == "720.00"
    assert as_written(NO_DATA_ROW)["devices_counted"] == ""
    assert as_written(ReconciliationRow("a", "2026-05", "video", "OK", 0))["devices_counted"] \
        == "0"


def _as_rows_were(row_type):
    """The row type as it was before rows held numbers: every value a string, "" for none."""
    return dataclass(frozen=True)(type(row_type.__name__, (), {
        "__annotations__": {f.name: str for f in fields(row_type)},
        **{f.name: "" for f in fields(row_type)}}))


def test_ledger_keys_take_a_row_as_they_did_when_rows_held_strings():
    for row in (TRUE_UP_ROW, NO_DATA_ROW, RmaRow("acme", 2026, 3, 40, Decimal("7.50"),
                                                 "BREACH")):
        before = _as_rows_were(type(row))(**as_written(row))
        assert _keyed(row) == repr(before)
