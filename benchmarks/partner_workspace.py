"""A large partner for benchmarks/run.py: many customers, one month, thousands of devices each.

It is made from the demo's customers (pipelines/demo), so the benchmark reads the same export
styles, sites, models and messy rows the demo shows, only at a partner's scale; it lives here
because nothing but the benchmark needs it.
"""
from __future__ import annotations

import dataclasses
import random
import uuid
from decimal import Decimal
from pathlib import Path

from pipelines.demo.build import DemoWorkspace, contract_lines, start_workspace
from pipelines.demo.customers import CUSTOMERS, HEADSET, MODELS, PHONE, VIDEO, Customer
from pipelines.demo.exports import OUIS, SERIAL_CHARS, STYLES, mac_text
from pipelines.demo.files import (
    add_months,
    csv_text,
    days_in,
    epoch,
    german_month,
    write_file,
)

_CATEGORY_OF_FAMILY = {HEADSET: "headset", VIDEO: "video", PHONE: "voice",
                       "Conference Phone": "voice"}
_PRICES = {"headset": Decimal("12.00"), "video": Decimal("180.00"), "voice": Decimal("24.00")}
# Growth against the ordered devices, customer by customer: OK, WATCH, TRUE_UP, shrinking.
_GROWTH = (0.0, 0.045, 0.06, -0.08)


def build_partner_workspace(home: Path, month: str, customers: int, devices_per_customer: int,
                            seed: int = 7) -> DemoWorkspace:
    """A large partner: `customers` customers, each with one Lens export of about
    `devices_per_customer` devices for `month`, written in the demo customers' export styles,
    sites and models in turn (messy rows included where the demo customer has them). Contracts
    order each category so that the customers come out OK, WATCH, TRUE_UP and shrinking in
    turn. The same arguments always give byte-identical files."""
    home = Path(home)
    first, last = add_months(month, -4), add_months(month, 7)
    configured = epoch(first, 1, 9)
    contracts = start_workspace(home, configured)
    rng = random.Random(seed)
    lines, ids = ["customers:"], []
    for index in range(customers):
        template = CUSTOMERS[index % len(CUSTOMERS)]
        customer_id = f"{template.id}-{index + 1:04d}"
        counts = _write_export(rng, home / "inbox" / customer_id, template, index, month,
                               devices_per_customer)
        lines += [*contract_lines(_contract(template, customer_id, index, counts), first, last),
                  ""]
        ids.append(customer_id)
    write_file(contracts, "\n".join(lines), "utf-8", configured)
    return DemoWorkspace(home, (month,), tuple(ids))


def _write_export(rng: random.Random, folder: Path, template: Customer, index: int,
                  month: str, devices: int) -> dict[str, int]:
    """The customer's export for `month`; returns its devices per contract category."""
    style = STYLES[template.export_style]
    models = [model for fleet in template.fleets for model in fleet.models]
    weights = [weight for fleet in template.fleets for weight in fleet.models.values()]
    sites = list(template.sites)
    days = days_in(month)
    counts: dict[str, int] = {}
    records = []
    for number, model in enumerate(rng.choices(models, weights, k=devices)):
        spec = MODELS[model]
        category = _CATEGORY_OF_FAMILY.get(spec.family)
        if category:
            counts[category] = counts.get(category, 0) + 1
        mac = f"{OUIS[index % 2]}{(index * devices + number) % 0x1000000:06X}" \
            if spec.networked else ""
        word = template.room_words[number % len(template.room_words)]
        room = "" if spec.personal else f"{word} {number % 6}.{number % 40:02d}"
        notation = number % 3 if style.mac_notation is None else style.mac_notation
        records.append({
            "serial": mac if spec.mac_is_serial else
            f"{SERIAL_CHARS[number % 33]}{index:05d}{number:07d}",
            "mac": mac_text(mac, notation),
            "lens_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "model": model, "site": sites[number % len(sites)], "room": room,
            "name": f"{room} {model}".strip(), "software": spec.software,
            "family": spec.family, "connected": "true",
            "last_detected": f"{month}-{days:02d} {8 + number % 10:02d}:{number % 60:02d}"})
    if template.messy:  # a device listed twice, and a row without identity
        records += [dict(records[0], serial=f" {records[0]['serial'].lower()} ", lens_id=""),
                    dict(records[1], serial="", mac="", lens_id="")]
    rows = [[name for name, _ in style.columns]]
    rows += [[record[field] for _, field in style.columns] for record in records]
    folder.mkdir(parents=True)
    name = template.file_name.format(month=month, month_de=german_month(month))
    write_file(folder / name, csv_text(rows, style.separator, style.line_end), style.encoding,
               epoch(add_months(month, 1), 2, 8, index % 60))
    return counts


def _contract(template: Customer, customer_id: str, index: int,
              counts: dict[str, int]) -> Customer:
    """The contract of the customer made from `template`: each category ordered so that its
    devices (`counts`) are the growth of _GROWTH against it."""
    growth = _GROWTH[index % len(_GROWTH)]
    categories = {category: {"ordered_devices": max(1, round(count / (1 + growth))),
                             "unit_price_per_year": _PRICES[category]}
                  for category, count in sorted(counts.items())}
    return dataclasses.replace(template, id=customer_id, name=f"{template.name} ({index + 1})",
                               master_account_id=f"MA-{200000 + index}", categories=categories)
