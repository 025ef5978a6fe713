"""The demo customers' inboxes: a Lens device export per month, as each customer writes it.

Each customer's fleets grow and shrink to their monthly counts, with devices swapped, sent in
for RMA and exported with the quirks real exports have (sloppy serials, MAC-only and Lens
id-only rows, duplicates, rejected rows). One random generator, drawn from in a fixed order,
makes the same seed give the same files.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.demo.customers import HEADSET, MODELS, Customer, Fleet
from pipelines.demo.files import (
    add_months,
    csv_text,
    days_in,
    epoch,
    german_month,
    write_file,
)
from pipelines.demo.rma_logs import RmaRow, plan_rmas, write_rma_logs


@dataclass(frozen=True)
class ExportStyle:
    separator: str
    encoding: str
    line_end: str
    columns: tuple[tuple[str, str], ...]  # (header, device field)
    mac_notation: int | None  # see mac_text; None: each device as it was typed in


STYLES = {
    "lens-api-snake-case": ExportStyle(",", "utf-8", "\n", (
        ("lens_device_id", "lens_id"), ("name", "name"), ("serial_number", "serial"),
        ("mac_address", "mac"), ("device_model", "model"), ("site_name", "site"),
        ("room_name", "room"), ("software_version", "software")), mac_notation=0),
    # The Lens UI's CSV download, with the "Device Type" label of Lens's docs.
    "lens-ui": ExportStyle(";", "utf-8-sig", "\r\n", (
        ("Device Name", "name"), ("Serial Number", "serial"), ("MAC Address", "mac"),
        ("Device Type", "model"), ("Site", "site"), ("Room", "room"),
        ("Device ID", "lens_id"), ("Last Detected", "last_detected")), mac_notation=1),
    "lens-api-camel-case": ExportStyle("\t", "utf-8", "\n", (
        ("id", "lens_id"), ("name", "name"), ("serialNumber", "serial"), ("macAddress", "mac"),
        ("hardwareModel", "model"), ("hardwareFamily", "family"), ("site", "site"),
        ("room", "room"), ("connected", "connected")), mac_notation=2),
    # A German partner's own list, kept in Excel: Windows-1252, no Lens ids.
    "partner-german": ExportStyle(",", "cp1252", "\r\n", (
        ("Seriennummer", "serial"), ("MAC-Adresse", "mac"), ("Modell", "model"),
        ("Standort", "site"), ("Raum", "room")), mac_notation=None),
}


def mac_text(mac: str, notation: int) -> str:
    """`mac` (12 hex digits) as 00:04:F2:…, 00-04-F2-… or 0004f2… (notation 0, 1, 2)."""
    if not mac:
        return ""
    pairs = [mac[i:i + 2] for i in range(0, 12, 2)]
    return (":".join(pairs), "-".join(pairs), mac.lower())[notation]


SERIAL_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
OUIS = ("0004F2", "64167F")  # Polycom's MAC prefixes


@dataclass
class _Device:
    serial: str
    mac: str  # 12 upper-case hex digits, or empty
    lens_id: str
    model: str
    site: str
    room: str
    name: str
    mac_notation: int  # for exports that mix notations
    shows: str = "all"  # all | mac | id: which identity the export carries
    pinned: bool = False  # kept all year so its case shows every month


class _Generator:
    def __init__(self, rng: random.Random, months: list[str]):
        self.rng, self.months = rng, months
        self.used: set[str] = set()

    def _unique(self, make) -> str:
        value = make()
        while value in self.used:
            value = make()
        self.used.add(value)
        return value

    def serial(self) -> str:
        rng = self.rng
        return self._unique(lambda: "".join(rng.choice(SERIAL_CHARS)
                                            for _ in range(rng.choice((10, 12, 14, 16)))))

    def mac(self) -> str:
        rng = self.rng
        return self._unique(lambda: rng.choice(OUIS) + f"{rng.getrandbits(24):06X}")

    def lens_id(self) -> str:
        return self._unique(lambda: str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))

    def rma_number(self) -> str:
        return self._unique(lambda: f"RMA-{self.rng.randint(3000000, 3999999)}")

    def device(self, customer: Customer, model: str) -> _Device:
        rng, spec = self.rng, MODELS[model]
        mac = self.mac() if spec.networked else ""
        serial = mac if spec.mac_is_serial else self.serial()
        site = rng.choices(list(customer.sites), list(customer.sites.values()))[0]
        short = model.removeprefix("Polycom ").removeprefix("Poly ")
        if spec.personal:
            room, name = "", short
        else:
            word = rng.choice(customer.room_words)
            room = f"{word} {rng.randint(0, 5)}.{rng.randint(1, 40):02d}"
            name = f"{room} {short}"
        return _Device(serial, mac, self.lens_id(), model, site, room, name, rng.randrange(3))

    def new_in(self, customer: Customer, fleet: Fleet) -> _Device:
        return self.device(customer, self.rng.choices(list(fleet.models),
                                                      list(fleet.models.values()))[0])

    def replace(self, customer: Customer, old: _Device) -> _Device:
        """The unit sent in exchange for `old`: new serial, same model and place."""
        new = self.device(customer, old.model)
        new.site, new.room, new.name = old.site, old.room, old.name
        return new


def _keep_count(gen: _Generator, customer: Customer, fleet: Fleet, devices: list[_Device],
                target: int) -> None:
    rng = gen.rng
    while len(devices) > target:
        devices.remove(rng.choice([d for d in devices if not d.pinned]))
    while len(devices) < target:
        devices.append(gen.new_in(customer, fleet))
    if fleet.churn and len(devices) >= 20 and rng.random() < 0.3:
        devices.remove(rng.choice([d for d in devices if not d.pinned]))
        devices.append(gen.new_in(customer, fleet))


def _pin(fleet: Fleet, devices: list[_Device]) -> None:
    shows = ["mac"] * fleet.mac_only + ["id"] * fleet.id_only
    for device, identity in zip(devices, shows, strict=False):
        device.shows, device.pinned = identity, True


def _export_rows(gen: _Generator, customer: Customer, month: str, devices: list[_Device],
                 extras: list[dict[str, str]]) -> list[list[str]]:
    rng = gen.rng
    style = STYLES[customer.export_style]
    records = []
    for device in devices:
        serial = device.serial if device.shows == "all" else ""
        if serial and not device.pinned and rng.random() < customer.sloppy_serials:
            serial = f" {serial.lower()} "
        records.append({
            "serial": serial,
            "mac": device.mac if device.shows in ("all", "mac") else "",
            "lens_id": device.lens_id if device.shows in ("all", "id") else "",
            "model": device.model, "site": device.site, "room": device.room,
            "name": device.name, "software": MODELS[device.model].software,
            "family": MODELS[device.model].family, "notation": device.mac_notation,
        })
    records += [dict(extra) for extra in extras]
    days = days_in(month)
    for record in records:
        notation = style.mac_notation
        if notation is None:
            notation = record.get("notation", 0)
        record["mac"] = mac_text(record.get("mac", ""), notation)
        record["last_detected"] = (f"{month}-{rng.randint(days - 4, days):02d} "
                                   f"{rng.randint(6, 19):02d}:{rng.randint(0, 59):02d}")
        record["connected"] = "true" if rng.random() < 0.9 else "false"
    records.sort(key=lambda r: (r["site"], r["room"], r["name"], r["serial"].strip().upper(),
                                r.get("lens_id", "")))
    return [[record.get(key, "") for _, key in style.columns] for record in records]


def _messy_extras(gen: _Generator, customer: Customer, duplicate: _Device
                  ) -> list[dict[str, str]]:
    """Rows every export of a messy customer carries besides its devices."""
    site = next(iter(customer.sites))
    return [
        # The same headset enrolled twice in Lens: a second Lens id, the serial as typed.
        {"serial": f"  {duplicate.serial.lower()} ", "lens_id": gen.lens_id(),
         "model": duplicate.model, "site": duplicate.site, "room": "", "name": duplicate.name,
         "software": MODELS[duplicate.model].software,
         "family": MODELS[duplicate.model].family},
        # No serial, MAC or Lens id: rejected (no identity).
        {"serial": "", "lens_id": "", "model": "Blackwire 3220", "site": site, "room": "",
         "name": "Blackwire 3220", "software": "1.13", "family": HEADSET},
        # No model: rejected.
        {"serial": gen.serial(), "lens_id": gen.lens_id(), "model": "", "site": site,
         "room": "", "name": "Unbekanntes Gerät", "software": "", "family": ""},
    ]


@dataclass(frozen=True)
class LateUpload:
    """A file to put into the inbox after the month's first run: path below the inbox."""
    path: str
    data: bytes
    mtime: int


def _write_inbox(gen: _Generator, customer: Customer, index: int, inbox: Path
                 ) -> list[LateUpload]:
    months, rng = gen.months, gen.rng
    folder = inbox / customer.id
    folder.mkdir(parents=True)
    style = STYLES[customer.export_style]
    header = [name for name, _ in style.columns]
    rma_plan = plan_rmas(rng, customer, months) if customer.rma else {}
    rma_rows: list[RmaRow] = []
    repeat: RmaRow | None = None
    fleets: list[list[_Device]] = [[] for _ in customer.fleets]
    extras: list[dict[str, str]] = []
    late: list[LateUpload] = []

    def write_export(name: str, month: str, devices: list[_Device],
                     extras: list[dict[str, str]], received: int) -> None:
        rows = [header] + _export_rows(gen, customer, month, devices, extras)
        write_file(folder / name, csv_text(rows, style.separator, style.line_end),
                   style.encoding, received)

    for k, month in enumerate(months):
        for spec, devices in zip(customer.fleets, fleets, strict=True):
            _keep_count(gen, customer, spec, devices, spec.counts[k])
            if k == 0:
                _pin(spec, devices)
        if k == 0 and customer.messy:
            duplicate = next(d for d in fleets[0] if not d.pinned)
            duplicate.pinned = True
            extras = _messy_extras(gen, customer, duplicate)

        for day, family, counts in rma_plan.get(k, []):
            wanted = family or HEADSET
            devices, old = rng.choice([(devices, d) for devices in fleets for d in devices
                                       if not d.pinned and MODELS[d.model].family == wanted])
            devices[devices.index(old)] = gen.replace(customer, old)
            row = (gen.rma_number(), f"{month}-{day:02d}", old.serial, old.model)
            rma_rows.append(row)
            if counts and customer.rma.repeated and repeat is None:
                repeat = row

        if k in customer.missing:
            continue
        devices = [d for found in fleets for d in found]
        received = epoch(add_months(month, 1), 2, 8, index)
        name = customer.file_name.format(month=month, month_de=german_month(month))
        correction = customer.correction
        if correction and correction.month == k:
            lacking = correction.site_lacking
            write_export(name, month, [d for d in devices if d.site != lacking],
                         [e for e in extras if e["site"] != lacking], received)
            name = correction.file_name.format(month=month)
            received += 7 * 86400  # the corrected export comes a week later
        write_export(name, month, devices, extras, received)
        if customer.late_correction and customer.late_correction.month == k:
            late.append(_late_export(gen, customer, month, devices, extras, received))

        if customer.notes_month == k:
            write_file(folder / f"notes-{month}.csv", csv_text([
                ["date", "author", "note"],
                [f"{month}-03", "K. Petersen",
                 "Boardroom moved to 4th floor, Lens re-enrolment pending"],
                [f"{month}-17", "K. Petersen", "Customer asks for a quote for two Studio X72"],
            ], ",", "\n"), "utf-8", epoch(add_months(month, 1), 2, 12, index))

    write_rma_logs(customer, index, folder, rma_rows, repeat, months[-1])
    return late


def _late_export(gen: _Generator, customer: Customer, month: str, devices: list[_Device],
                 extras: list[dict[str, str]], received: int) -> LateUpload:
    """The month exported again with one more device. Drawn from a random source of its own,
    so the other customers' files stay as they are without it."""
    late_gen = _Generator(random.Random(f"{customer.id}-{month}-late"), gen.months)
    late_gen.used = set(gen.used)  # no serial, MAC or id of the demo drawn twice
    found = late_gen.new_in(customer, customer.fleets[0])
    style = STYLES[customer.export_style]
    rows = [[name for name, _ in style.columns],
            *_export_rows(late_gen, customer, month, [*devices, found], extras)]
    name = customer.late_correction.file_name.format(month=month)
    text = csv_text(rows, style.separator, style.line_end)
    return LateUpload(f"{customer.id}/{name}", text.encode(style.encoding), received + 86400)


def write_inboxes(inbox: Path, customers: tuple[Customer, ...], months: list[str],
                  seed: int) -> list[LateUpload]:
    """inbox/<customer id>/ for each customer: its exports of `months`, and its RMA logs;
    returns the uploads that come after a month's first run."""
    gen = _Generator(random.Random(seed), months)
    return [late for index, customer in enumerate(customers)
            for late in _write_inbox(gen, customer, index, inbox)]
