"""Data quality: the Great Expectations suites for inventory snapshots and RMA logs.

GX Core 1.x has no DuckDB data source, so each snapshot is audited as a pandas DataFrame read
back from the warehouse inside the load's transaction (write, audit, publish): the identity
and model rules are the SQL ones, never a second copy. Suites live here as code, with an
ephemeral context (nothing written to disk) and no progress bars.

Rows are validated in chunks and the counts added up, so memory stays flat however large the
snapshot: row-wise expectations add up exactly, and "listed twice" is a per-row flag the
audit query computes over the whole snapshot.

A finding never blocks a snapshot — rows without identity or model are rejected row by row,
and a suspect snapshot (under half the previous month's devices) still counts, since the
latest snapshot stands — but every finding is stored per snapshot and shown to the partner.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

import pandas as pd

CATALOG_CATEGORIES = ["headset", "video", "voice", "quote_only"]
SERIAL_PATTERN = r"^[A-Z0-9][A-Z0-9._/-]{3,39}$"
MAC_PATTERN = r"^[0-9A-F]{12}$"
MAX_UNCLASSIFIED_SHARE = 0.10  # above this, the catalog probably lacks a model in use
SUSPECT_DROP = 0.5  # under half the previous month's devices ...
SUSPECT_MINIMUM = 50  # ... when that month had at least this many


_SHARED: "QualityGate | None" = None


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # rejected (rows not counted) | warning | suspect (whole snapshot)
    passed: bool
    checked: int
    failing: int
    message: str


@dataclass(frozen=True)
class _Check:
    name: str
    severity: str
    expectation: object
    message: str  # formatted with failing=, checked=, observed=
    tolerated_share: float = 0.0  # the expectation's `mostly` as a share that may fail

    def finding(self, checked: int, failing: int, observed=None) -> Finding:
        passed = failing <= checked * self.tolerated_share
        return Finding(self.name, self.severity, passed, checked, failing,
                       self.message.format(failing=failing, checked=checked,
                                           observed=observed))


class QualityGate:
    """The suites, built once per process (GX's import and context cost a second or two):
    use `QualityGate.shared()`."""

    @classmethod
    def shared(cls) -> "QualityGate":
        global _SHARED
        if _SHARED is None:
            _SHARED = cls()
        return _SHARED

    @cached_property
    def _gx(self):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        return gx, context, context.data_sources.add_pandas("polyrecon")

    @cached_property
    def _batches(self) -> dict:
        _, _, source = self._gx
        return {name: source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
                for name in ("inventory_rows", "inventory_devices", "rma_rows")}

    @cached_property
    def _suites(self) -> dict:
        gx, context, _ = self._gx
        suites = {}
        for name, checks in (("inventory_rows", self._inventory_checks()),
                             ("rma_rows", self._rma_checks())):
            suite = context.suites.add(gx.ExpectationSuite(name=name))
            for check in checks:
                suite.add_expectation(check.expectation)
            suites[name] = (suite, checks)
        return suites

    def _validate(self, name: str, chunks: Iterable[pd.DataFrame]) -> list[Finding]:
        """Validate chunk by chunk with the suite; add the counts up per expectation."""
        suite, checks = self._suites[name]
        checked = {check.name: 0 for check in checks}
        failing = dict(checked)
        for frame in chunks:
            batch = self._batches[name].get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(suite, result_format="SUMMARY")
            outcomes = {outcome.expectation_config.id: outcome for outcome in result.results}
            for check in checks:
                outcome = outcomes[check.expectation.id].result
                checked[check.name] += int(outcome.get("element_count") or 0)
                failing[check.name] += int(outcome.get("unexpected_count") or 0)
        return [check.finding(checked[check.name], failing[check.name]) for check in checks]

    def _inventory_checks(self) -> list[_Check]:
        gx, _, _ = self._gx
        e = gx.expectations
        return [
            _Check("identity", "rejected", e.ExpectColumnValuesToNotBeNull(column="identity"),
                   "{failing} of {checked} rows have no serial number, MAC address or Lens "
                   "device id: they are not counted"),
            _Check("model", "rejected", e.ExpectColumnValuesToNotBeNull(column="model_key"),
                   "{failing} of {checked} rows have no model: they are not counted"),
            _Check("serial_format", "warning",
                   e.ExpectColumnValuesToMatchRegex(column="serial_key", regex=SERIAL_PATTERN),
                   "{failing} serial numbers do not look like Poly serials (4-40 letters and "
                   "digits)"),
            _Check("mac_format", "warning",
                   e.ExpectColumnValuesToMatchRegex(column="mac_key", regex=MAC_PATTERN),
                   "{failing} MAC addresses are not 12 hex digits: they are not used to "
                   "identify devices"),
            _Check("duplicates", "warning",
                   e.ExpectColumnValuesToBeInSet(column="listed_before", value_set=[False]),
                   "{failing} rows list a device already listed in the file: each device "
                   "counts once"),
            _Check("unclassified_share", "warning",
                   e.ExpectColumnValuesToBeInSet(column="category", value_set=CATALOG_CATEGORIES,
                                                 mostly=1 - MAX_UNCLASSIFIED_SHARE),
                   "{failing} of {checked} rows have a model the catalog does not know "
                   "(more than 10 % means the catalog needs a row: add it to "
                   "config/catalog.csv)", tolerated_share=MAX_UNCLASSIFIED_SHARE),
        ]

    def _rma_checks(self) -> list[_Check]:
        gx, _, _ = self._gx
        e = gx.expectations
        return [
            _Check("rma_number", "rejected", e.ExpectColumnValuesToNotBeNull(column="rma_key"),
                   "{failing} of {checked} rows have no RMA number: they are not counted"),
            _Check("rma_date", "rejected", e.ExpectColumnValuesToNotBeNull(column="rma_date"),
                   "{failing} of {checked} rows have no date in the form YYYY-MM-DD: they are "
                   "not counted"),
            _Check("rma_future", "warning",
                   e.ExpectColumnValuesToBeBetween(column="days_ahead", max_value=0),
                   "{failing} RMA dates lie in the future"),
            _Check("rma_model", "rejected", e.ExpectColumnValuesToNotBeNull(column="model_key"),
                   "{failing} of {checked} rows have no model: they cannot be classified"),
        ]

    def check_inventory(self, chunks: Iterable[pd.DataFrame], devices: int,
                        previous_devices: int | None) -> list[Finding]:
        """`chunks` of rows: serial_key, mac_key, identity, model_key, category,
        listed_before; `devices`: distinct devices the snapshot counts."""
        findings = self._validate("inventory_rows", chunks)
        if previous_devices is not None and previous_devices >= SUSPECT_MINIMUM:
            gx, _, _ = self._gx
            least = math.ceil(previous_devices * SUSPECT_DROP)
            check = _Check(
                "month_over_month", "suspect",
                gx.expectations.ExpectColumnValuesToBeBetween(column="devices", min_value=least),
                f"{{observed}} devices against {previous_devices} the month before: under "
                f"half — perhaps a partial export; it still counts (the latest snapshot "
                f"stands), check it and upload a complete one")
            batch = self._batches["inventory_devices"].get_batch(
                batch_parameters={"dataframe": pd.DataFrame({"devices": [devices]})})
            outcome = batch.validate(check.expectation, result_format="SUMMARY").result
            findings.append(check.finding(1, int(outcome.get("unexpected_count") or 0),
                                          devices))
        return findings

    def check_rma(self, chunks: Iterable[pd.DataFrame]) -> list[Finding]:
        """`chunks` of rows: rma_key, rma_date (DATE or null), days_ahead, model_key."""
        return self._validate("rma_rows", chunks)
