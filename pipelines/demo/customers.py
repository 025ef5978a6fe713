"""The demo's customers, read from customers.yaml, and the Lens models their fleets are made of.

The customers are data so that a case can be read, and changed, in one place; the models are
code because their traits (networked, personal, MAC as serial) decide how devices are made.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pipelines.core.errors import ConfigError
from pipelines.core.yaml_files import YamlDocument


@dataclass(frozen=True)
class Model:
    family: str  # Lens hardwareFamily
    networked: bool  # has a MAC address
    personal: bool  # belongs to a person, not a room
    software: str
    mac_is_serial: bool = False  # Polycom desk phones carry their MAC as serial number


HEADSET, VIDEO, PHONE = "Headset", "Video Conferencing", "Desk Phone"
MODELS = {
    "Voyager Focus 2 Series": Model(HEADSET, False, True, "1.26"),
    "Savi 8220 Series": Model(HEADSET, False, True, "2.9.7"),
    "Blackwire 3220": Model(HEADSET, False, True, "1.13"),
    "Sync 20-M": Model(HEADSET, False, True, "1.4.1"),
    "Calisto 5300-M": Model(HEADSET, False, True, "1.4.0"),
    "Poly Studio X30": Model(VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio X50": Model(VIDEO, True, False, "4.1.1-410080"),
    "G 7500 Video Endpoint": Model(VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio USB": Model(VIDEO, False, False, "1.3.1-030"),
    "Poly VVX 450": Model(PHONE, True, False, "6.4.6.2153", mac_is_serial=True),
    "CCX 600": Model(PHONE, True, False, "8.1.3.1304"),
    "Poly Trio 8800": Model("Conference Phone", True, False, "7.2.6.0141"),
    "Edge E320": Model(PHONE, True, False, "8.1.4.1045"),
    "Polycom SoundPoint IP 501": Model(PHONE, True, False, "3.2.7.0198", mac_is_serial=True),
    "Polycom SoundPoint IP 301": Model(PHONE, True, False, "3.2.7.0198", mac_is_serial=True),
    "Poly RealPresence DMA 7000": Model("Infrastructure", True, False, "10.2.0.1"),
    "Poly RealPresence Collaboration Server": Model("Infrastructure", True, False, "8.11.0"),
    "Poly Medialign 55": Model(VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio Z9 Prototype": Model(VIDEO, True, False, "0.9.2-dev"),
    "Lens Desktop Windows": Model("Software", False, True, "1.3.2"),
    # Lens lists accessories beside the devices they belong to: never counted (not_counted).
    "Voyager 5200 Charge Case": Model("Accessory", False, True, "1.0.4"),
    "Poly Trio C60 Expansion Microphone": Model("Accessory", False, False, "7.2.6.0141"),
}


# The keys of customers.yaml, explained at the top of that file.

@dataclass(frozen=True)
class Fleet:
    models: dict[str, int]
    counts: tuple[int, ...]
    mac_only: int = 0
    id_only: int = 0
    churn: bool = True


@dataclass(frozen=True)
class Rma:
    counted: int
    prior: int = 0
    other_family: str | None = None  # one RMA of a device of this family (not counted)
    repeated: bool = False  # one RMA number listed twice
    quarterly_name: bool = False  # RMA_<YYYY>-Q<n>_<YYYY-MM>.csv, else rma-log-<YYYY-MM>.csv
    german: bool = False  # the partner's German list: RMA-Nummer;Datum (DD.MM.YYYY);…


@dataclass(frozen=True)
class Correction:
    month: int
    site_lacking: str  # the site the first export of the month left out
    file_name: str


@dataclass(frozen=True)
class LateCorrection:
    """A re-export of `month` that arrives after its report went out (the demo puts it into
    the inbox then and runs the month again): one device more, offline on the first export's
    day."""
    month: int
    file_name: str


@dataclass(frozen=True)
class EarlierTerm:
    """The term before the one of `categories`: from month `first` up to term_start - 1."""
    first: int
    categories: dict[str, dict[str, int | Decimal]]


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    master_account_id: str
    site_ids: tuple[str, ...]
    csm: dict[str, str]
    partner_contacts: tuple[str, ...]
    currency: str
    categories: dict[str, dict[str, int | Decimal]]
    note: str
    term_start: int
    export_style: str
    file_name: str
    sites: dict[str, int]
    room_words: tuple[str, ...]
    fleets: tuple[Fleet, ...]
    sloppy_serials: float = 0.0
    messy: bool = False
    missing: tuple[int, ...] = ()
    correction: Correction | None = None
    late_correction: LateCorrection | None = None
    earlier_term: EarlierTerm | None = None
    notes_month: int | None = None
    rma: Rma | None = None
    language: str | None = None  # its reports' and e-mails' language, else the partner's


def _customer(entry: dict) -> Customer:
    fields = dict(entry)
    for key in ("site_ids", "partner_contacts", "room_words", "missing"):
        if key in fields:
            fields[key] = tuple(fields[key])
    fields["fleets"] = tuple(Fleet(**dict(fleet, counts=tuple(fleet["counts"])))
                             for fleet in fields["fleets"])
    if "sloppy_serials" in fields:  # a share drawn against random(): a float, as random() is
        fields["sloppy_serials"] = float(fields["sloppy_serials"])
    if "correction" in fields:
        fields["correction"] = Correction(**fields["correction"])
    if "late_correction" in fields:
        fields["late_correction"] = LateCorrection(**fields["late_correction"])
    if "earlier_term" in fields:
        fields["earlier_term"] = EarlierTerm(**fields["earlier_term"])
    if "rma" in fields:
        fields["rma"] = Rma(**fields["rma"])
    customer = Customer(**fields)
    unknown = sorted({model for fleet in customer.fleets for model in fleet.models} - set(MODELS))
    if unknown:
        raise ConfigError(f"customers.yaml: {customer.id}: unknown models {unknown}; add them to "
                          f"MODELS in pipelines/demo/customers.py")
    return customer


CUSTOMERS = tuple(_customer(entry) for entry in
                  YamlDocument.read(Path(__file__).with_name("customers.yaml")).data["customers"])
