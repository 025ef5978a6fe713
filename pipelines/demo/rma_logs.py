"""The demo customers' RMA logs: when their devices were sent in, and the quarterly log files.

The RMAs are planned so that each customer's headset RMA rate at the last month is the one its
case needs (customers.yaml, `rma`), with RMAs of the previous calendar year and of other
device families as the distractors a real log has.
"""
from __future__ import annotations

import random
from pathlib import Path

from pipelines.core.months import Month
from pipelines.demo.customers import Customer
from pipelines.demo.files import add_months, csv_text, days_in, epoch, write_file

RmaRow = tuple[str, str, str, str]  # RMA number, day (YYYY-MM-DD), serial, model


def plan_rmas(rng: random.Random, customer: Customer, months: list[str]
              ) -> dict[int, list[tuple[int, str | None, bool]]]:
    """Month index -> [(day, family or None for a headset, counts at L)]."""
    plan = customer.rma
    this_year = months[-1][:4]
    counted_months = [i for i, m in enumerate(months)
                      if m[:4] == this_year and i >= customer.term_start]
    prior_months = [i for i, m in enumerate(months) if m[:4] < this_year]
    events: list[tuple[int, str | None, bool]] = [
        (rng.choice(counted_months), None, True) for _ in range(plan.counted)]
    if prior_months:
        events += [(rng.choice(prior_months), None, False) for _ in range(plan.prior)]
    if plan.other_family:
        events.append((rng.choice(counted_months), plan.other_family, False))
    by_month: dict[int, list[tuple[int, str | None, bool]]] = {}
    for index, family, counts in events:
        day = rng.randint(1, days_in(months[index]))
        by_month.setdefault(index, []).append((day, family, counts))
    return {index: sorted(found, key=lambda e: e[0]) for index, found in by_month.items()}


def _rma_log(customer: Customer, day: str, last_month: str) -> tuple[str, str]:
    """The quarterly log an RMA of `day` is in: its file name and the month it was sent."""
    parsed = Month.parse(day[:7])
    year, quarter = parsed.year, (parsed.month - 1) // 3 + 1
    month = min(f"{year:04d}-{quarter * 3:02d}", last_month)
    if customer.rma.quarterly_name:
        return f"RMA_{year:04d}-Q{quarter}_{month}.csv", month
    return f"rma-log-{month}.csv", month


def write_rma_logs(customer: Customer, index: int, folder: Path, rma_rows: list[RmaRow],
                   repeat: RmaRow | None, last_month: str) -> None:
    logs: dict[tuple[str, str], list[RmaRow]] = {}
    for row in sorted(rma_rows, key=lambda r: (r[1], r[0])):
        logs.setdefault(_rma_log(customer, row[1], last_month), []).append(row)
    for (name, month), rows in logs.items():
        if repeat in rows:
            rows.append(repeat)  # the same RMA exported again at the end of the log
        if customer.rma.german:
            table = [["RMA-Nummer", "Datum", "Seriennummer", "Modell"]] + [
                [number, f"{day[8:10]}.{day[5:7]}.{day[:4]}", serial, model]
                for number, day, serial, model in rows]
            text = csv_text(table, ";", "\r\n")
        else:
            text = csv_text([["rma_number", "date", "serial", "model"]]
                            + [list(r) for r in rows], ",", "\n")
        write_file(folder / name, text, "utf-8", epoch(add_months(month, 1), 3, 8, index))
