"""Data quality: the Great Expectations suites for inventory snapshots and RMA logs.

The row rules (identity, model, serial and MAC format, listed twice, catalog category) are the
SQL ones of sql/ — never a second copy — and SQL counts them per snapshot while the rows are
still staged (sql/raw/measure_staged_snapshots.sql, sql/raw/measure_rma_log.sql). GX judges those
per-snapshot measurements: one row per snapshot, one validation for a whole batch of
snapshots. That keeps GX's fixed cost (tens of milliseconds a validation) off every file and
its per-row cost (about a microsecond) off every device, and GX still says which snapshot
failed which expectation. GX Core 1.x has no DuckDB data source, so the measurements are a
pandas DataFrame, validated with an ephemeral context (nothing written to disk) and no
progress bars. The result format is COMPLETE with the subject as index column — on a frame
of one row per snapshot that is small, and it names every failing snapshot (SUMMARY names 20).

A finding never blocks a snapshot — rows without identity or model are rejected row by row,
and a suspect snapshot (under half the previous month's devices) still counts, since the
latest snapshot stands — but every finding is stored per snapshot and shown to the partner.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from pipelines.core.i18n import NP_, Message

SERIAL_PATTERN = "[A-Z0-9][A-Z0-9._/-]{3,39}"  # whole-value match (regexp_full_match)
# 12 hex digits, any case, with separators anywhere (whole-value match, as it stands)
MAC_PATTERN = r"(?i)[\s:.\-]*(?:[0-9A-F][\s:.\-]*){12}"
MAX_UNCLASSIFIED_SHARE = 0.10  # above this, the catalog probably lacks a model in use
SUSPECT_DROP = 0.5  # under half the previous month's devices ...
SUSPECT_MINIMUM = 50  # ... when that month had at least this many

_SHARED: QualityGate | None = None
_PLACES = re.compile(r"%\((\w+)\)s")  # the measurements a message names


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # rejected (rows not counted) | warning | suspect (whole snapshot)
    passed: bool
    checked: int
    failing: int
    message: Message  # shown in the reader's language: the partner's, the customer's


@dataclass(frozen=True)
class _Check:
    name: str
    severity: str
    expectation: object
    failing: str | None  # the measurement counting the rows that break the rule (None: 0/1)
    checked: str | None  # the measurement counting the rows looked at (None: the snapshot)
    message: tuple[str, str]  # singular and plural by `failing`; values failing, checked
    # and the measurements
    applies_when: str | None = None  # a measurement that is null where the check does not apply


class QualityGate:
    """The suites, built once per process (GX's import and context cost a second or two):
    use `QualityGate.shared()`."""

    @classmethod
    def shared(cls) -> QualityGate:
        global _SHARED
        if _SHARED is None:
            _SHARED = cls()
        return _SHARED

    def warm_up(self) -> None:
        """Build the suites in a background thread: importing GX takes about two seconds of
        Python, which can overlap the DuckDB work (it releases the GIL) before the first
        validation, which then waits for it (cached_property holds a lock)."""
        threading.Thread(target=lambda: self._suites, name="gx-warm-up", daemon=True).start()

    @cached_property
    def _gx(self):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        return gx, context, context.data_sources.add_pandas("polyrecon")

    @cached_property
    def _suites(self) -> dict:
        gx, context, source = self._gx
        suites = {}
        for name, checks in (("inventory_snapshots", self._inventory_checks()),
                             ("rma_logs", self._rma_checks())):
            suite = context.suites.add(gx.ExpectationSuite(name=name))
            for check in checks:
                suite.add_expectation(check.expectation)
            batches = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
            suites[name] = (suite, checks, batches)
        return suites

    def _validate(self, name: str, measurements: pd.DataFrame) -> dict[str, list[Finding]]:
        """Findings per subject: GX validates every subject's measurements in one go."""
        if measurements.empty:
            return {}
        suite, checks, batches = self._suites[name]
        batch = batches.get_batch(batch_parameters={"dataframe": measurements})
        result = batch.validate(suite, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": ["subject"],
            "return_unexpected_index_query": False})
        failed = {outcome.expectation_config.id: {
            row["subject"] for row in outcome.result.get("unexpected_index_list") or []}
            for outcome in result.results}
        findings: dict[str, list[Finding]] = {}
        for row in measurements.to_dict("records"):
            found = findings.setdefault(row["subject"], [])
            for check in checks:
                if check.applies_when and pd.isna(row[check.applies_when]):
                    continue
                broken = row["subject"] in failed[check.expectation.id]
                failing = int(row[check.failing]) if check.failing else int(broken)
                checked = int(row[check.checked]) if check.checked else 1
                values = {name: int(row[name]) for name in _PLACES.findall(check.message[1])
                          if name in row}
                found.append(Finding(check.name, check.severity, not broken, checked, failing,
                                     Message.of(*check.message, count="failing", **{
                                         **values, "failing": failing, "checked": checked})))
        return findings

    def _none(self, column: str):
        """The expectation that a snapshot counts no rows of this kind."""
        gx, _, _ = self._gx
        return gx.expectations.ExpectColumnValuesToBeBetween(column=column, max_value=0)

    def _inventory_checks(self) -> list[_Check]:
        gx, _, _ = self._gx
        e, none = gx.expectations, self._none
        return [
            _Check("identity", "rejected", none("without_identity"), "without_identity",
                   "rows", NP_("%(failing)s of %(checked)s rows has no serial number, MAC "
                               "address or Lens device id: it is not counted",
                               "%(failing)s of %(checked)s rows have no serial number, MAC "
                               "address or Lens device id: they are not counted")),
            _Check("model", "rejected", none("without_model"), "without_model", "rows",
                   NP_("%(failing)s of %(checked)s rows has no model: it is not counted",
                       "%(failing)s of %(checked)s rows have no model: they are not counted")),
            _Check("serial_format", "warning", none("odd_serials"), "odd_serials", "rows",
                   NP_("%(failing)s serial number does not look like a Poly serial (4-40 "
                       "letters and digits)",
                       "%(failing)s serial numbers do not look like Poly serials (4-40 letters "
                       "and digits)")),
            _Check("mac_format", "warning", none("odd_macs"), "odd_macs", "rows",
                   NP_("%(failing)s MAC address is not 12 hex digits: it is not used to "
                       "identify the device",
                       "%(failing)s MAC addresses are not 12 hex digits: they are not used to "
                       "identify devices")),
            _Check("duplicates", "warning", none("listed_again"), "listed_again", "rows",
                   NP_("%(failing)s row lists a device already listed in the file: each "
                       "device counts once",
                       "%(failing)s rows list a device already listed in the file: each device "
                       "counts once")),
            _Check("unclassified_share", "warning",
                   e.ExpectColumnValuesToBeBetween(column="unclassified_share",
                                                   max_value=MAX_UNCLASSIFIED_SHARE),
                   "unclassified", "rows",
                   NP_("%(failing)s of %(checked)s rows has a model the catalog does not know "
                       "(more than 10 %% means the catalog needs a row: add it to "
                       "config/catalog.csv)",
                       "%(failing)s of %(checked)s rows have a model the catalog does not know "
                       "(more than 10 %% means the catalog needs a row: add it to "
                       "config/catalog.csv)")),
            _Check("month_over_month", "suspect",
                   e.ExpectColumnPairValuesAToBeGreaterThanB(
                       column_A="devices", column_B="suspect_below", or_equal=True,
                       ignore_row_if="either_value_is_missing"),
                   None, None,
                   NP_("%(devices)s devices against %(previous_devices)s the month before: "
                       "under half — perhaps a partial export; it still counts (the latest "
                       "snapshot stands), check it and upload a complete one",
                       "%(devices)s devices against %(previous_devices)s the month before: "
                       "under half — perhaps a partial export; it still counts (the latest "
                       "snapshot stands), check it and upload a complete one"),
                   applies_when="suspect_below"),
        ]

    def _rma_checks(self) -> list[_Check]:
        none = self._none
        return [
            _Check("rma_number", "rejected", none("without_number"), "without_number", "rows",
                   NP_("%(failing)s of %(checked)s rows has no RMA number: it is not counted",
                       "%(failing)s of %(checked)s rows have no RMA number: they are not "
                       "counted")),
            _Check("rma_date", "rejected", none("without_date"), "without_date", "rows",
                   NP_("%(failing)s of %(checked)s rows has no date in the form YYYY-MM-DD or "
                       "DD.MM.YYYY: it is not counted",
                       "%(failing)s of %(checked)s rows have no date in the form YYYY-MM-DD or "
                       "DD.MM.YYYY: they are not counted")),
            _Check("rma_future", "warning", none("future_dates"), "future_dates", "rows",
                   NP_("%(failing)s RMA date lies in the future",
                       "%(failing)s RMA dates lie in the future")),
            _Check("rma_model", "rejected", none("without_model"), "without_model", "rows",
                   NP_("%(failing)s of %(checked)s rows has no model: it cannot be classified",
                       "%(failing)s of %(checked)s rows have no model: they cannot be "
                       "classified")),
        ]

    def check_snapshots(self, measurements: pd.DataFrame) -> dict[str, list[Finding]]:
        """`measurements`: one row per snapshot (subject) as sql/raw/measure_staged_snapshots.sql
        gives them."""
        return self._validate("inventory_snapshots", measurements)

    def check_rma_logs(self, measurements: pd.DataFrame) -> dict[str, list[Finding]]:
        """`measurements`: one row per RMA log (subject), sql/raw/measure_rma_log.sql."""
        return self._validate("rma_logs", measurements)
