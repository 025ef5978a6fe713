"""What Poly Lens calls things, in one place: the header labels of its exports (and of the
lists partners keep themselves), and the device fields of its GraphQL API, each mapped to the
raw layer's columns. The export reader (intake/export_reader.py) and the API client
(lens_api/) read Lens through these names; a Lens word we do not know yet is added here.

Headers are matched case-, accent- and punctuation-insensitively (`header_key`).
"""
from __future__ import annotations

import json
import re
import unicodedata

INVENTORY_ALIASES: dict[str, tuple[str, ...]] = {
    # field: header aliases, normalised by header_key, best first. Lens's UI and docs, its API
    # field names, snake_case dumps, and the German labels of partners' own lists.
    "serial": ("serialnumber", "serial", "serialno", "seriennummer", "seriennr"),
    "mac": ("macaddress", "mac", "macadresse"),
    # "Device Type" is what Lens's documentation calls the model column; a file with a model
    # column as well reads the model from that one.
    "model": ("devicemodel", "model", "hardwaremodel", "modelname", "product", "productname",
              "hardwareproduct", "modell", "modellname", "devicetype", "geratetyp",
              "geraetetyp"),
    "site": ("sitename", "site", "standort"),
    "room": ("roomname", "room", "raum", "raumname"),
    "lens_device_id": ("lensdeviceid", "deviceid", "id", "gerateid", "geraeteid"),
    "device_name": ("devicename", "name", "geratename", "geraetename"),
}
# When Lens last saw each device: its UI's "Last Detected" ("the last date that Poly Lens
# connected with the Device", info.lens.poly.com/docs/deviceusers/device-users-overview), its
# API's `lastDetected` (tests/fixtures/lens/), German partners' "Zuletzt gesehen". Kept as the
# raw column `last_seen` (rules.md "Devices not seen"; a pull's raw file keeps it in
# extra_json, sql/raw/stage_inventory_csv.sql), and read by intake as evidence of the month the
# export shows (intake/evidence.py).
LAST_SEEN_ALIASES = ("lastdetected", "lastseen", "zuletztgesehen", "zuletzterkannt")
RMA_ALIASES: dict[str, tuple[str, ...]] = {
    "rma_number": ("rmanumber", "rmano", "rmanr", "rma", "rmaid", "rmanummer"),
    "rma_date": ("date", "rmadate", "createddate", "created", "datum", "rmadatum"),
    "serial": INVENTORY_ALIASES["serial"],
    "model": INVENTORY_ALIASES["model"],
}
# The raw layer's inventory columns, as a Lens pull's raw file holds them
# (sql/raw/stage_inventory_csv.sql).
RAW_COLUMNS = ("row_number", *INVENTORY_ALIASES, "extra_json")


def header_key(header: str) -> str:
    """A header as aliases are written: accents folded ("Gerätetyp" → "geratetyp"), then
    letters and digits only, lower case."""
    folded = unicodedata.normalize("NFKD", header.lower())
    return re.sub(r"[^a-z0-9]", "", folded)


def device_row(position: int, node: dict) -> dict:
    """A Lens device node as a raw inventory row (same columns as a CSV export)."""
    site, room = node.get("site") or {}, node.get("room") or {}
    extra = {key: node.get(key) for key in ("hardwareFamily", "hardwareProduct", "productId",
                                            "softwareVersion", "connected", "lastDetected")}
    extra.update(site_id=site.get("id"), room_id=room.get("id"))
    return {"row_number": position, "serial": node.get("serialNumber"),
            "mac": node.get("macAddress"),
            # Lens's product id is the model's name for room systems and phones ("Edge E350"):
            # the model when the node has no hardwareModel.
            "model": node.get("hardwareModel") or node.get("hardwareProduct")
            or node.get("productId"),
            "site": site.get("name"), "room": room.get("name"),
            "lens_device_id": node.get("id"), "device_name": node.get("name"),
            "extra_json": json.dumps(extra, ensure_ascii=False, sort_keys=True)}
