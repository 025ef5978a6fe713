"""A deterministic demo workspace: seven customers, twelve months of Poly Lens exports.

`build_demo_workspace(home, last_month)` writes config/partner.yaml, config/contracts.yaml and
one Lens device export per customer and month into inbox/<customer_id>/, plus RMA logs, for
the twelve months ending at `last_month` (called L below; L-11 is the oldest month). The same
arguments always give byte-identical files with identical modification times.

Terms: most run one year from the first of L-10 to the end of L+1, so L-11 lies before the
term (its export is kept, not used) and L is not the last month. Defaults of rules.md apply
(buffer 5 %, trigger 5 %, watch at 80 % of the trigger, RMA threshold 5 %).

What each customer demonstrates:

Every model is spelled as Poly Lens's own product catalog spells it ("G 7500 Video Endpoint",
"Voyager Focus 2 Series", "Poly VVX 450", "Sync 20-M"; data/README.md), and the exports carry
the header labels Lens's docs, UI and API use, and a German partner's own labels.

- alpenblick-versicherung (CHF; snake_case Lens API dump, comma, UTF-8): video ordered 40
  reaches TRUE_UP twice: L-7 (43 devices, +3) and, against the reset baseline of 43, L-3
  (46, +3); WATCH at L-4 (45 vs 43). Voice from installed 183 + 4 % growth (ordered 191),
  always OK; its Trio C60 expansion microphones are accessories (not counted). Quote-only
  RealPresence DMA 7000 and Collaboration Server (QUOTE_REQUIRED).
- hanseatische-logistik (EUR; Lens UI export with the docs' "Device Type" label, semicolon,
  UTF-8 with BOM): headset-only, installed 200 + 5 % (ordered 210). Its Lens tenant also
  shows VVX and Trio phones (voice NOT_COVERED), Voyager 5200 charge cases and, from L-7,
  Lens Desktop (both not counted, listed in the report). Every export has a duplicate device
  (the same serial again, lower-case with spaces, under a second Lens id), Lens id-only
  headsets, MAC-only phones, a row without any identity and a row without a model (both
  rejected). L-5 has a corrected re-export a week after the first one, which lacked the
  Bremen site: the correction (219 headsets, WATCH) is the month's snapshot.
  Headset RMA rate 12 / 210 = 5.71 % at L: BREACH (plus RMAs of the previous calendar year
  when the window reaches into it, which do not count at L).
- thames-valley-legal (GBP; camelCase API dump, tab separated): headset ordered 60, video
  ordered 25. No export for L-6: NO_DATA. Video 26 at L: WATCH at exactly 4.00 %. Headset
  RMA rate 3 / 60 = 5.00 % at L: WATCH (not above 5 %); its log also holds one video-device
  RMA (video, not counted) and, when in the window, one RMA of the previous calendar year.
- rheintal-praezision (CHF; the partner's own German list "Seriennummer,MAC-Adresse,Modell,
  Standort,Raum", Windows-1252 with München / Zürich sites): voice ordered 120 with
  end-of-life SoundPoint IP 501 / IP 301 phones (excluded, listed), serials sometimes
  lower-case with spaces, mixed MAC notations, MAC-only rows. Voice 126 at L: TRUE_UP,
  exactly at the baseline 126.00 (+6 devices, 2 remaining months x 22.00 -> 22.00).
- lakeshore-health (USD; snake_case, site names with commas, quoted): the term runs L-11 … L,
  so L carries a renewal proposal. Video ordered 30: TRUE_UP at L-5 (32, +2, 195.00 prorated),
  then 33 against 32: OK (renewal 33). Voice installed 88 + 6 % (ordered 94) ends at 92: OK
  (renewal stays 94, never below the ordered value). Poly Medialign carts: QUOTE_REQUIRED.
- nordwind-energie (EUR; camelCase, tab separated inside a .csv, files named with German
  month names: "Lens Export März 2026.csv"): the term starts at L-5, so the roll-out months
  before it are outside the term. Headset ordered 140, OK. Voice installed 61 + 8 % (ordered
  66): 69 at L is WATCH (4.55 %). Headset RMA rate 5 / 140 = 3.57 %: OK, with one RMA number
  listed twice in its log (counts once); the log is the partner's German list (RMA-Nummer,
  Datum as DD.MM.YYYY, Seriennummer, Modell).
- cobalt-ridge-engineering (USD; Lens UI export with "Device Type", semicolon, BOM): video
  ordered 80 shrinking to 66 (-17.50 %, OK: shrinking never lowers ordered). A "Poly Studio
  Z9 Prototype" from L-7 is a product the catalog truly does not know (UNCLASSIFIED).
  notes-<L-6>.csv has no model column: the pipeline quarantines it.
"""
from __future__ import annotations

import calendar
import csv
import io
import os
import random
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.months import Month, month_range

@dataclass(frozen=True)
class DemoWorkspace:
    home: Path
    months: tuple[str, ...]  # the twelve months with data, oldest first
    customer_ids: tuple[str, ...]


# --- months (text in, text out: the generator works in YYYY-MM strings) --------------------

def _add_months(month: str, count: int) -> str:
    return str(Month.parse(month).plus(count))


def _month_range(first: str, last: str) -> list[str]:
    return [str(m) for m in month_range(Month.parse(first), Month.parse(last))]


def _days_in(month: str) -> int:
    return Month.parse(month).last_day.day


_GERMAN_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                  "September", "Oktober", "November", "Dezember")


def _german_month(month: str) -> str:
    """"März 2026": how a German-speaking partner names a month in a file name."""
    parsed = Month.parse(month)
    return f"{_GERMAN_MONTHS[parsed.month - 1]} {parsed.year}"


def _epoch(month: str, day: int, hour: int, minute: int = 0) -> int:
    parsed = Month.parse(month)
    return calendar.timegm((parsed.year, parsed.month, day, hour, minute, 0))


# --- models as Lens reports them ---------------------------------------------------------

@dataclass(frozen=True)
class _Model:
    family: str  # Lens hardwareFamily
    networked: bool  # has a MAC address
    personal: bool  # belongs to a person, not a room
    software: str
    mac_is_serial: bool = False  # Polycom desk phones carry their MAC as serial number


_HEADSET, _VIDEO, _PHONE = "Headset", "Video Conferencing", "Desk Phone"
_MODELS = {
    "Voyager Focus 2 Series": _Model(_HEADSET, False, True, "1.26"),
    "Savi 8220 Series": _Model(_HEADSET, False, True, "2.9.7"),
    "Blackwire 3220": _Model(_HEADSET, False, True, "1.13"),
    "Sync 20-M": _Model(_HEADSET, False, True, "1.4.1"),
    "Calisto 5300-M": _Model(_HEADSET, False, True, "1.4.0"),
    "Poly Studio X30": _Model(_VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio X50": _Model(_VIDEO, True, False, "4.1.1-410080"),
    "G 7500 Video Endpoint": _Model(_VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio USB": _Model(_VIDEO, False, False, "1.3.1-030"),
    "Poly VVX 450": _Model(_PHONE, True, False, "6.4.6.2153", mac_is_serial=True),
    "CCX 600": _Model(_PHONE, True, False, "8.1.3.1304"),
    "Poly Trio 8800": _Model("Conference Phone", True, False, "7.2.6.0141"),
    "Edge E320": _Model(_PHONE, True, False, "8.1.4.1045"),
    "Polycom SoundPoint IP 501": _Model(_PHONE, True, False, "3.2.7.0198", mac_is_serial=True),
    "Polycom SoundPoint IP 301": _Model(_PHONE, True, False, "3.2.7.0198", mac_is_serial=True),
    "Poly RealPresence DMA 7000": _Model("Infrastructure", True, False, "10.2.0.1"),
    "Poly RealPresence Collaboration Server": _Model("Infrastructure", True, False, "8.11.0"),
    "Poly Medialign 55": _Model(_VIDEO, True, False, "4.1.1-410080"),
    "Poly Studio Z9 Prototype": _Model(_VIDEO, True, False, "0.9.2-dev"),
    "Lens Desktop Windows": _Model("Software", False, True, "1.3.2"),
    # Lens lists accessories beside the devices they belong to: never counted (not_counted).
    "Voyager 5200 Charge Case": _Model("Accessory", False, True, "1.0.4"),
    "Poly Trio C60 Expansion Microphone": _Model("Accessory", False, False, "7.2.6.0141"),
}

# --- the customers -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Fleet:
    models: tuple[tuple[str, int], ...]  # model, weight for new devices
    counts: tuple[int, ...]  # devices per month, L-11 … L
    mac_only: int = 0  # devices exported without serial (and without Lens id)
    id_only: int = 0  # devices exported with only their Lens id
    churn: bool = True  # a few devices are swapped for new ones now and then


@dataclass(frozen=True)
class _Rma:
    counted: int  # headset RMAs in L's calendar year, up to L
    prior: int = 0  # headset RMAs in the previous calendar year, when the window reaches it
    other_family: str | None = None  # one RMA of a non-headset device
    repeated: bool = False  # one RMA number listed twice
    quarterly_name: bool = False  # RMA_<YYYY>-Q<n>_<YYYY-MM>.csv, else rma-log-<YYYY-MM>.csv
    german: bool = False  # the partner's German list: RMA-Nummer;Datum (DD.MM.YYYY);…


@dataclass(frozen=True)
class _Customer:
    id: str
    name: str
    master_account_id: str
    site_ids: tuple[str, ...]
    csm: tuple[str, str]
    contacts: tuple[str, ...]
    currency: str
    term_start: int  # index of the term's first month, L-11 being 0; terms last 12 months
    categories: tuple[str, ...]  # YAML lines under `categories:`
    note: str  # YAML comment; {m[i]} is the month with index i
    style: int  # header style of the exports, see _STYLES
    file_name: str  # with {month} (YYYY-MM) or {month_de} ("März 2026")
    sites: tuple[tuple[str, int], ...]  # Lens site, weight
    room_words: tuple[str, ...]
    fleets: tuple[_Fleet, ...]
    sloppy_serials: float = 0.0  # share of serials written lower-case with spaces
    messy: bool = False  # duplicate device and rejected rows in every export
    missing: tuple[int, ...] = ()  # months without an export
    correction: tuple[int, str, str] | None = None  # month, site the first export lacked, name
    notes_month: int | None = None
    rma: _Rma | None = None


_PARTNER_CONTACTS = ("service@nordlicht.example",)
_CUSTOMERS = (
    _Customer(
        id="alpenblick-versicherung", name="Alpenblick Versicherung AG",
        master_account_id="MA-104417", site_ids=("S-2301", "S-2302", "S-2303"),
        csm=("Jana Beispiel", "jana.beispiel@example.com"),
        contacts=_PARTNER_CONTACTS + ("r.fehr@nordlicht.example",), currency="CHF", term_start=1,
        categories=(
            "video: {ordered_devices: 40, unit_price_per_year: 180.00}",
            "voice: {installed_devices: 183, growth_rate_pct: 4, unit_price_per_year: 24.00}"
            "  # ordered 191",
        ),
        note="Video: TRUE_UP in {m[4]} and again in {m[8]} (baseline reset), WATCH in {m[7]}. "
             "Quote-only DMA and Collaboration Server.",
        style=1, file_name="lens-export-{month}.csv",
        sites=(("Zürich Hauptsitz", 5), ("Bern", 3), ("Basel", 2)),
        room_words=("Sitzungszimmer", "Büro", "Schulungsraum", "Meeting Room"),
        fleets=(
            _Fleet((("G 7500 Video Endpoint", 2), ("Poly Studio X50", 3), ("Poly Studio X30", 2),
                    ("Poly Studio USB", 1)),
                   (38, 39, 40, 41, 43, 43, 44, 45, 46, 46, 47, 47)),
            _Fleet((("Poly VVX 450", 4), ("CCX 600", 3), ("Poly Trio 8800", 1)),
                   (186, 187, 187, 188, 189, 188, 190, 190, 191, 189, 189, 188)),
            _Fleet((("Poly RealPresence DMA 7000", 1),), (1,) * 12),
            _Fleet((("Poly RealPresence Collaboration Server", 1),), (1,) * 12),
            _Fleet((("Poly Trio C60 Expansion Microphone", 1),), (4,) * 12, churn=False),
        ),
    ),
    _Customer(
        id="hanseatische-logistik", name="Hanseatische Logistik GmbH & Co. KG",
        master_account_id="MA-117802", site_ids=("S-4410", "S-4411"),
        csm=("Oliver Brandt", "oliver.brandt@example.com"),
        contacts=_PARTNER_CONTACTS + ("k.petersen@nordlicht.example",), currency="EUR",
        term_start=1,
        categories=(
            "headset: {installed_devices: 200, growth_rate_pct: 5, unit_price_per_year: 12.00}"
            "  # ordered 210",
        ),
        note="Headset only; the VVX/Trio phones in its Lens tenant are not covered. Messy exports "
             "(duplicates, id-only, MAC-only, rejected rows); {m[6]} was re-exported a week "
             "later. Headset RMAs above 5 %: BREACH.",
        style=2, file_name="Device Inventory {month}.csv",
        sites=(("Hamburg", 5), ("Bremen", 2), ("Hannover", 2), ("Rostock", 1)),
        room_words=("Lager", "Büro", "Disposition", "Empfang"),
        fleets=(
            _Fleet((("Voyager Focus 2 Series", 4), ("Savi 8220 Series", 3),
                    ("Blackwire 3220", 3), ("Sync 20-M", 1)),
                   (203, 205, 206, 206, 208, 212, 219, 217, 216, 216, 215, 214), id_only=3),
            _Fleet((("Poly VVX 450", 4), ("Poly Trio 8800", 1)),
                   (8, 8, 8, 9, 9, 9, 9, 9, 10, 10, 10, 10), mac_only=2),
            _Fleet((("Lens Desktop Windows", 1),), (0, 0, 0, 0) + (1,) * 8),
            _Fleet((("Voyager 5200 Charge Case", 1),), (6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11)),
        ),
        sloppy_serials=0.02, messy=True,
        correction=(6, "Bremen", "Device Inventory {month} (corrected).csv"),
        rma=_Rma(counted=12, prior=2),
    ),
    _Customer(
        id="thames-valley-legal", name="Thames Valley Legal LLP",
        master_account_id="MA-120955", site_ids=("S-7102",),
        csm=("Claire Whitfield", "claire.whitfield@example.com"),
        contacts=_PARTNER_CONTACTS, currency="GBP", term_start=1,
        categories=(
            "headset: {ordered_devices: 60, unit_price_per_year: 14.50}",
            "video: {ordered_devices: 25, unit_price_per_year: 210.00}",
        ),
        note="No export for {m[5]} (NO_DATA). Video WATCH at exactly 4 % in {m[11]}. Headset "
             "RMA rate exactly 5 %: WATCH, not BREACH.",
        style=3, file_name="devices_{month}_final.txt",
        sites=(("London (Holborn)", 5), ("Reading", 3), ("Oxford", 2)),
        room_words=("Meeting Room", "Client Suite", "Huddle", "Boardroom"),
        fleets=(
            _Fleet((("Voyager Focus 2 Series", 3), ("Blackwire 3220", 2),
                    ("Calisto 5300-M", 1)),
                   (57, 57, 58, 58, 59, 59, 59, 60, 60, 61, 61, 61)),
            _Fleet((("Poly Studio X30", 3), ("Poly Studio X50", 2), ("Poly Studio USB", 2),
                    ("G 7500 Video Endpoint", 1)),
                   (22, 23, 23, 24, 24, 24, 25, 25, 25, 25, 25, 26)),
        ),
        missing=(5,),
        rma=_Rma(counted=3, prior=1, other_family=_VIDEO, quarterly_name=True),
    ),
    _Customer(
        id="rheintal-praezision", name="Rheintal Präzisionstechnik AG",
        master_account_id="MA-109381", site_ids=("S-3120", "S-3121"),
        csm=("Marta Keller", "marta.keller@example.com"),
        contacts=_PARTNER_CONTACTS + ("r.fehr@nordlicht.example",), currency="CHF", term_start=1,
        categories=("voice: {ordered_devices: 120, unit_price_per_year: 22.00}",),
        note="Voice with end-of-life SoundPoint IP phones (excluded). TRUE_UP in {m[11]} at "
             "exactly the baseline (126).",
        style=4, file_name="Lens-Inventar {month}.csv",
        sites=(("Zürich", 4), ("München", 3), ("St. Gallen", 2), ("Winterthur", 1)),
        room_words=("Büro", "Werkstätte", "Empfang", "Besprechung", "Prüffeld"),
        fleets=(
            _Fleet((("Poly VVX 450", 5), ("Edge E320", 3), ("CCX 600", 2),
                    ("Poly Trio 8800", 1)),
                   (114, 115, 116, 116, 118, 119, 119, 121, 122, 123, 124, 126), mac_only=2),
            _Fleet((("Polycom SoundPoint IP 501", 3), ("Polycom SoundPoint IP 301", 2)),
                   (10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5), churn=False),
        ),
        sloppy_serials=0.05,
    ),
    _Customer(
        id="lakeshore-health", name="Lakeshore Health Partners, Inc.",
        master_account_id="MA-131207", site_ids=("S-9001", "S-9002", "S-9003"),
        csm=("Daniel Okafor", "daniel.okafor@example.com"),
        contacts=_PARTNER_CONTACTS + ("us-desk@nordlicht.example",), currency="USD",
        term_start=0,
        categories=(
            "video: {ordered_devices: 30, unit_price_per_year: 195.00}",
            "voice: {installed_devices: 88, growth_rate_pct: 6, unit_price_per_year: 26.00}"
            "  # ordered 94",
        ),
        note="The term ends in {m[11]}: that month carries a renewal proposal. Video TRUE_UP in "
             "{m[6]}. Medialign carts are quote-only.",
        style=1, file_name="lakeshore_lens_{month}.csv",
        sites=(("Chicago, Loop Campus", 5), ("Evanston Medical Center", 3),
               ("Oak Park Clinic", 2)),
        room_words=("Conference Room", "Nurse Station", "Exam Room", "Huddle"),
        fleets=(
            _Fleet((("Poly Studio X50", 3), ("G 7500 Video Endpoint", 2), ("Poly Studio X30", 2)),
                   (28, 29, 29, 30, 30, 31, 32, 32, 32, 33, 33, 33)),
            _Fleet((("CCX 600", 3), ("Poly VVX 450", 3), ("Poly Trio 8800", 1)),
                   (90, 91, 91, 92, 93, 93, 94, 94, 93, 93, 92, 92)),
            _Fleet((("Poly Medialign 55", 1),), (2, 2, 2, 2) + (3,) * 8),
        ),
    ),
    _Customer(
        id="nordwind-energie", name="Nordwind Energie GmbH",
        master_account_id="MA-126640", site_ids=("S-5530",),
        csm=("Sophie Lindqvist", "sophie.lindqvist@example.com"),
        contacts=_PARTNER_CONTACTS + ("k.petersen@nordlicht.example",), currency="EUR",
        term_start=6,
        categories=(
            "headset: {ordered_devices: 140, unit_price_per_year: 11.00}",
            "voice: {installed_devices: 61, growth_rate_pct: 8, unit_price_per_year: 24.00}"
            "  # ordered 66",
        ),
        note="The term starts in {m[6]}: earlier exports lie outside it. Voice WATCH in {m[11]}. "
             "One RMA number is listed twice.",
        style=3, file_name="Lens Export {month_de}.csv",
        sites=(("Hamburg", 4), ("Husum", 3), ("Kiel", 2), ("Bremerhaven", 1)),
        room_words=("Leitwarte", "Büro", "Besprechung", "Werkstatt"),
        fleets=(
            _Fleet((("Voyager Focus 2 Series", 3), ("Blackwire 3220", 3),
                    ("Savi 8220 Series", 2), ("Calisto 5300-M", 1)),
                   (120, 124, 126, 128, 131, 133, 134, 135, 136, 137, 137, 138)),
            _Fleet((("Edge E320", 4), ("CCX 600", 2), ("Poly Trio 8800", 1)),
                   (58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69)),
        ),
        rma=_Rma(counted=5, repeated=True, german=True),
    ),
    _Customer(
        id="cobalt-ridge-engineering", name="Cobalt Ridge Engineering, LLC",
        master_account_id="MA-138814", site_ids=("S-8820", "S-8821"),
        csm=("Daniel Okafor", "daniel.okafor@example.com"),
        contacts=_PARTNER_CONTACTS + ("us-desk@nordlicht.example",), currency="USD",
        term_start=1,
        categories=("video: {ordered_devices: 80, unit_price_per_year: 165.00}",),
        note="Video shrinking below ordered (stays OK). A prototype model is unclassified. "
             "notes-{m[5]}.csv is not an inventory and goes to quarantine.",
        style=2, file_name="PolyLens_Devices_{month}.csv",
        sites=(("Denver", 5), ("Salt Lake City", 3), ("Boise", 2)),
        room_words=("Conference Room", "Design Lab", "Huddle", "Training Room"),
        fleets=(
            _Fleet((("Poly Studio X50", 3), ("Poly Studio X30", 3), ("G 7500 Video Endpoint", 2),
                    ("Poly Studio USB", 1)),
                   (79, 78, 78, 77, 76, 75, 73, 72, 71, 70, 68, 66)),
            _Fleet((("Poly Studio Z9 Prototype", 1),), (0, 0, 0, 0) + (1,) * 8),
        ),
        notes_month=5,
    ),
)

# --- export formats ----------------------------------------------------------------------
# style: separator, encoding, line end, (header, field) per column

_STYLES = {
    1: (",", "utf-8", "\n", (
        ("lens_device_id", "lens_id"), ("name", "name"), ("serial_number", "serial"),
        ("mac_address", "mac"), ("device_model", "model"), ("site_name", "site"),
        ("room_name", "room"), ("software_version", "software"))),
    2: (";", "utf-8-sig", "\r\n", (
        ("Device Name", "name"), ("Serial Number", "serial"), ("MAC Address", "mac"),
        ("Device Type", "model"), ("Site", "site"), ("Room", "room"),
        ("Device ID", "lens_id"), ("Last Detected", "last_detected"))),
    3: ("\t", "utf-8", "\n", (
        ("id", "lens_id"), ("name", "name"), ("serialNumber", "serial"), ("macAddress", "mac"),
        ("hardwareModel", "model"), ("hardwareFamily", "family"), ("site", "site"),
        ("room", "room"), ("connected", "connected"))),
    4: (",", "cp1252", "\r\n", (
        ("Seriennummer", "serial"), ("MAC-Adresse", "mac"), ("Modell", "model"),
        ("Standort", "site"), ("Raum", "room"))),
}


def _mac_text(mac: str, notation: int) -> str:
    if not mac:
        return ""
    pairs = [mac[i:i + 2] for i in range(0, 12, 2)]
    return (":".join(pairs), "-".join(pairs), mac.lower())[notation]


# --- devices -----------------------------------------------------------------------------

_SERIAL_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_OUIS = ("0004F2", "64167F")


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
        return self._unique(lambda: "".join(rng.choice(_SERIAL_CHARS)
                                            for _ in range(rng.choice((10, 12, 14, 16)))))

    def mac(self) -> str:
        rng = self.rng
        return self._unique(lambda: rng.choice(_OUIS) + f"{rng.getrandbits(24):06X}")

    def lens_id(self) -> str:
        return self._unique(lambda: str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))

    def rma_number(self) -> str:
        return self._unique(lambda: f"RMA-{self.rng.randint(3000000, 3999999)}")

    def device(self, customer: _Customer, model: str) -> _Device:
        rng, spec = self.rng, _MODELS[model]
        mac = self.mac() if spec.networked else ""
        serial = mac if spec.mac_is_serial else self.serial()
        site = rng.choices([s for s, _ in customer.sites], [w for _, w in customer.sites])[0]
        short = model.removeprefix("Polycom ").removeprefix("Poly ")
        if spec.personal:
            room, name = "", short
        else:
            word = rng.choice(customer.room_words)
            room = f"{word} {rng.randint(0, 5)}.{rng.randint(1, 40):02d}"
            name = f"{room} {short}"
        return _Device(serial, mac, self.lens_id(), model, site, room, name, rng.randrange(3))

    def new_in(self, customer: _Customer, fleet: _Fleet) -> _Device:
        models, weights = zip(*fleet.models)
        return self.device(customer, self.rng.choices(models, weights)[0])

    def replace(self, customer: _Customer, old: _Device) -> _Device:
        """The unit sent in exchange for `old`: new serial, same model and place."""
        new = self.device(customer, old.model)
        new.site, new.room, new.name = old.site, old.room, old.name
        return new


def _keep_count(gen: _Generator, customer: _Customer, fleet: _Fleet, devices: list[_Device],
                target: int) -> None:
    rng = gen.rng
    while len(devices) > target:
        devices.remove(rng.choice([d for d in devices if not d.pinned]))
    while len(devices) < target:
        devices.append(gen.new_in(customer, fleet))
    if fleet.churn and len(devices) >= 20 and rng.random() < 0.3:
        devices.remove(rng.choice([d for d in devices if not d.pinned]))
        devices.append(gen.new_in(customer, fleet))


def _pin(fleet: _Fleet, devices: list[_Device]) -> None:
    shows = ["mac"] * fleet.mac_only + ["id"] * fleet.id_only
    for device, identity in zip(devices, shows):
        device.shows, device.pinned = identity, True


# --- RMAs ----------------------------------------------------------------------------------

def _plan_rmas(rng: random.Random, customer: _Customer, months: list[str]
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
        day = rng.randint(1, _days_in(months[index]))
        by_month.setdefault(index, []).append((day, family, counts))
    return {index: sorted(found, key=lambda e: e[0]) for index, found in by_month.items()}


def _rma_log(customer: _Customer, day: str, last_month: str) -> tuple[str, str]:
    """The quarterly log an RMA of `day` is in: its file name and the month it was sent."""
    parsed = Month.parse(day[:7])
    year, quarter = parsed.year, (parsed.month - 1) // 3 + 1
    month = min(f"{year:04d}-{quarter * 3:02d}", last_month)
    if customer.rma.quarterly_name:
        return f"RMA_{year:04d}-Q{quarter}_{month}.csv", month
    return f"rma-log-{month}.csv", month


# --- writing -------------------------------------------------------------------------------

def _write(path: Path, text: str, encoding: str, mtime: int) -> None:
    path.write_bytes(text.encode(encoding))
    os.utime(path, (mtime, mtime))


def _csv_text(rows: list[list[str]], separator: str, line_end: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator=line_end).writerows(rows)
    return buffer.getvalue()


def _export_rows(gen: _Generator, customer: _Customer, month: str, devices: list[_Device],
                 extras: list[dict[str, str]]) -> list[list[str]]:
    rng = gen.rng
    columns = _STYLES[customer.style][3]
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
            "name": device.name, "software": _MODELS[device.model].software,
            "family": _MODELS[device.model].family, "notation": device.mac_notation,
        })
    records += [dict(extra) for extra in extras]
    days = _days_in(month)
    for record in records:
        notation = record.get("notation", 0) if customer.style == 4 else customer.style - 1
        record["mac"] = _mac_text(record.get("mac", ""), notation)
        record["last_detected"] = (f"{month}-{rng.randint(days - 4, days):02d} "
                                   f"{rng.randint(6, 19):02d}:{rng.randint(0, 59):02d}")
        record["connected"] = "true" if rng.random() < 0.9 else "false"
    records.sort(key=lambda r: (r["site"], r["room"], r["name"], r["serial"].strip().upper(),
                                r.get("lens_id", "")))
    return [[record.get(key, "") for _, key in columns] for record in records]


def _messy_extras(gen: _Generator, customer: _Customer, duplicate: _Device
                  ) -> list[dict[str, str]]:
    """Rows every export of a messy customer carries besides its devices."""
    site = customer.sites[0][0]
    return [
        # The same headset enrolled twice in Lens: a second Lens id, the serial as typed.
        {"serial": f"  {duplicate.serial.lower()} ", "lens_id": gen.lens_id(),
         "model": duplicate.model, "site": duplicate.site, "room": "", "name": duplicate.name,
         "software": _MODELS[duplicate.model].software,
         "family": _MODELS[duplicate.model].family},
        # No serial, MAC or Lens id: rejected (no identity).
        {"serial": "", "lens_id": "", "model": "Blackwire 3220", "site": site, "room": "",
         "name": "Blackwire 3220", "software": "1.13", "family": _HEADSET},
        # No model: rejected.
        {"serial": gen.serial(), "lens_id": gen.lens_id(), "model": "", "site": site,
         "room": "", "name": "Unbekanntes Gerät", "software": "", "family": ""},
    ]


def _build_customer(gen: _Generator, customer: _Customer, index: int, inbox: Path) -> None:
    months, rng = gen.months, gen.rng
    folder = inbox / customer.id
    folder.mkdir(parents=True)
    separator, encoding, line_end, columns = _STYLES[customer.style]
    header = [name for name, _ in columns]
    rma_plan = _plan_rmas(rng, customer, months) if customer.rma else {}
    rma_rows: list[tuple[str, str, str, str]] = []
    repeat: tuple[str, str, str, str] | None = None
    fleets: list[list[_Device]] = [[] for _ in customer.fleets]
    extras: list[dict[str, str]] = []

    for k, month in enumerate(months):
        for spec, devices in zip(customer.fleets, fleets):
            _keep_count(gen, customer, spec, devices, spec.counts[k])
            if k == 0:
                _pin(spec, devices)
        if k == 0 and customer.messy:
            duplicate = next(d for d in fleets[0] if not d.pinned)
            duplicate.pinned = True
            extras = _messy_extras(gen, customer, duplicate)

        for day, family, counts in rma_plan.get(k, []):
            wanted = family or _HEADSET
            devices, old = rng.choice([(devices, d) for devices in fleets for d in devices
                                       if not d.pinned and _MODELS[d.model].family == wanted])
            devices[devices.index(old)] = gen.replace(customer, old)
            row = (gen.rma_number(), f"{month}-{day:02d}", old.serial, old.model)
            rma_rows.append(row)
            if counts and customer.rma.repeated and repeat is None:
                repeat = row

        if k in customer.missing:
            continue
        devices = [d for found in fleets for d in found]
        received = _epoch(_add_months(month, 1), 2, 8, index)
        name = customer.file_name.format(month=month, month_de=_german_month(month))
        if customer.correction and customer.correction[0] == k:
            lacking = customer.correction[1]
            _write(folder / name, _csv_text([header] + _export_rows(
                gen, customer, month, [d for d in devices if d.site != lacking],
                [e for e in extras if e["site"] != lacking]), separator, line_end),
                encoding, received)
            name = customer.correction[2].format(month=month)
            received += 7 * 86400
        _write(folder / name, _csv_text([header] + _export_rows(
            gen, customer, month, devices, extras), separator, line_end), encoding, received)

        if customer.notes_month == k:
            _write(folder / f"notes-{month}.csv", _csv_text([
                ["date", "author", "note"],
                [f"{month}-03", "K. Petersen", "Boardroom moved to 4th floor, Lens re-enrolment "
                                               "pending"],
                [f"{month}-17", "K. Petersen", "Customer asks for a quote for two Studio X72"],
            ], ",", "\n"), "utf-8", _epoch(_add_months(month, 1), 2, 12, index))

    _write_rma_logs(customer, index, folder, rma_rows, repeat, months[-1])


def _write_rma_logs(customer: _Customer, index: int, folder: Path,
                    rma_rows: list[tuple[str, str, str, str]],
                    repeat: tuple[str, str, str, str] | None, last_month: str) -> None:
    logs: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    for row in sorted(rma_rows, key=lambda r: (r[1], r[0])):
        logs.setdefault(_rma_log(customer, row[1], last_month), []).append(row)
    for (name, month), rows in logs.items():
        if repeat in rows:
            rows.append(repeat)  # the same RMA exported again at the end of the log
        if customer.rma.german:
            table = [["RMA-Nummer", "Datum", "Seriennummer", "Modell"]] + [
                [number, f"{day[8:10]}.{day[5:7]}.{day[:4]}", serial, model]
                for number, day, serial, model in rows]
            text = _csv_text(table, ";", "\r\n")
        else:
            text = _csv_text([["rma_number", "date", "serial", "model"]]
                             + [list(r) for r in rows], ",", "\n")
        _write(folder / name, text, "utf-8", _epoch(_add_months(month, 1), 3, 8, index))


# --- configuration files -------------------------------------------------------------------

_PARTNER_YAML = """\
# Partner settings of the polyrecon demo. Every key is optional; the policy values are the
# contract defaults (rules.md), written out so that changing one is a one-line edit.
partner:
  name: "Nordlicht Kommunikation GmbH"
  logo: null                       # path to a PNG or SVG, relative to this folder
  primary_color: "#0b5394"
  contact_email: service@nordlicht.example

policy:
  baseline_buffer_pct: 5           # baseline = ordered devices + 5 %
  true_up_trigger_pct: 5           # growth of 5 % or more forces a mid-term true-up
  watch_at_pct_of_trigger: 80      # WATCH from 4 % growth, and from a 4 % headset RMA rate
  rma_threshold_pct: 5             # headset RMAs per calendar year above this: BREACH
  proration_start: report_month    # or next_month
  eligibility_min_devices: null    # no eligibility check

# No lens block: every demo customer has lens_tenant_id null, inventories come from inbox/.
smtp: null                         # e-mails are written to outbox/ as .eml files
"""


def _contracts_yaml(months: list[str]) -> str:
    ahead = _month_range(months[0], _add_months(months[-1], 12))
    lines = [
        "# Demo contracts: one entry per customer under a Poly+ Enterprise contract.",
        "# id: lower-case letters, digits and '-'; it is also the inbox folder name.",
        "# A category gives ordered_devices, or installed_devices + growth_rate_pct",
        "# (ordered = ceil(installed x (1 + growth/100))). Prices are per device and year.",
        f"# The demo data covers {months[0]} to {months[-1]}.",
        "",
        "customers:",
    ]
    for customer in _CUSTOMERS:
        first, last = ahead[customer.term_start], ahead[customer.term_start + 11]
        csm_name, csm_email = customer.csm
        lines += [
            *textwrap.wrap(customer.note.format(m=months), 94, initial_indent="  # ",
                           subsequent_indent="  # ", break_on_hyphens=False),
            f"  - id: {customer.id}",
            f'    name: "{customer.name}"',
            f"    master_account_id: {customer.master_account_id}",
            f"    site_ids: [{', '.join(customer.site_ids)}]",
            "    lens_tenant_id: null",
            f'    csm: {{name: "{csm_name}", email: {csm_email}}}',
            f"    partner_contacts: [{', '.join(customer.contacts)}]",
            f"    currency: {customer.currency}",
            f"    term: {{start: {first}-01, end: {last}-{_days_in(last):02d}}}",
            "    categories:",
            *(f"      {line}" for line in customer.categories),
            "",
        ]
    return "\n".join(lines)


# --- the public entry point ----------------------------------------------------------------

def build_demo_workspace(home: Path, last_month: str, seed: int = 7) -> DemoWorkspace:
    """Create a demo workspace in `home` with data for the twelve months ending `last_month`.

    Raises FileExistsError when `home` already has config/contracts.yaml.
    """
    home = Path(home)
    contracts = home / "config" / "contracts.yaml"
    if contracts.exists():
        raise FileExistsError(f"{contracts} already exists: choose an empty folder for the demo")
    months = _month_range(_add_months(last_month, -11), last_month)
    for folder in ("config", "inbox", "archive", "quarantine", "reports", "outbox"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    configured = _epoch(months[0], 1, 9)
    _write(home / "config" / "partner.yaml", _PARTNER_YAML, "utf-8", configured)
    _write(contracts, _contracts_yaml(months), "utf-8", configured)

    gen = _Generator(random.Random(seed), months)
    for index, customer in enumerate(_CUSTOMERS):
        _build_customer(gen, customer, index, home / "inbox")
    return DemoWorkspace(home, tuple(months), tuple(c.id for c in _CUSTOMERS))


# --- a large partner, for benchmarks ------------------------------------------------------

_CATEGORY_OF_FAMILY = {_HEADSET: "headset", _VIDEO: "video", _PHONE: "voice",
                       "Conference Phone": "voice"}
_PRICES = {"headset": "12.00", "video": "180.00", "voice": "24.00"}
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
    contracts = home / "config" / "contracts.yaml"
    if contracts.exists():
        raise FileExistsError(f"{contracts} already exists: choose an empty folder")
    for folder in ("config", "inbox", "archive", "quarantine", "reports", "outbox"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    configured = _epoch(_add_months(month, -4), 1, 9)
    _write(home / "config" / "partner.yaml", _PARTNER_YAML, "utf-8", configured)
    rng = random.Random(seed)
    entries, ids = [], []
    for index in range(customers):
        template = _CUSTOMERS[index % len(_CUSTOMERS)]
        customer_id = f"{template.id}-{index + 1:04d}"
        counts = _write_partner_export(rng, home / "inbox" / customer_id, template, index,
                                       month, devices_per_customer)
        entries.append(_partner_contract(template, customer_id, index, month, counts))
        ids.append(customer_id)
    _write(contracts, "\n".join(["customers:", *entries]), "utf-8", configured)
    return DemoWorkspace(home, (month,), tuple(ids))


def _write_partner_export(rng: random.Random, folder: Path, template: _Customer, index: int,
                          month: str, devices: int) -> dict[str, int]:
    separator, encoding, line_end, columns = _STYLES[template.style]
    models = [model for fleet in template.fleets for model, _ in fleet.models]
    weights = [weight for fleet in template.fleets for _, weight in fleet.models]
    sites = [site for site, _ in template.sites]
    days = _days_in(month)
    counts: dict[str, int] = {}
    records = []
    for number, model in enumerate(rng.choices(models, weights, k=devices)):
        spec = _MODELS[model]
        category = _CATEGORY_OF_FAMILY.get(spec.family)
        if category:
            counts[category] = counts.get(category, 0) + 1
        mac = f"{_OUIS[index % 2]}{(index * devices + number) % 0x1000000:06X}" \
            if spec.networked else ""
        room = "" if spec.personal else \
            f"{template.room_words[number % len(template.room_words)]} {number % 6}.{number % 40:02d}"
        records.append({
            "serial": mac if spec.mac_is_serial else
            f"{_SERIAL_CHARS[number % 33]}{index:05d}{number:07d}",
            "mac": _mac_text(mac, number % 3 if template.style == 4 else template.style - 1),
            "lens_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "model": model, "site": sites[number % len(sites)], "room": room,
            "name": f"{room} {model}".strip(), "software": spec.software,
            "family": spec.family, "connected": "true",
            "last_detected": f"{month}-{days:02d} {8 + number % 10:02d}:{number % 60:02d}"})
    if template.messy:  # a device listed twice, and a row without identity
        records += [dict(records[0], serial=f" {records[0]['serial'].lower()} ", lens_id=""),
                    dict(records[1], serial="", mac="", lens_id="")]
    rows = [[name for name, _ in columns]]
    rows += [[record[field] for _, field in columns] for record in records]
    folder.mkdir(parents=True)
    _write(folder / template.file_name.format(month=month), _csv_text(rows, separator, line_end),
           encoding, _epoch(_add_months(month, 1), 2, 8, index % 60))
    return counts


def _partner_contract(template: _Customer, customer_id: str, index: int, month: str,
                      counts: dict[str, int]) -> str:
    growth = _GROWTH[index % len(_GROWTH)]
    first, last = _add_months(month, -4), _add_months(month, 7)
    csm_name, csm_email = template.csm
    categories = [f"      {category}: {{ordered_devices: {max(1, round(count / (1 + growth)))}, "
                  f"unit_price_per_year: {_PRICES[category]}}}"
                  for category, count in sorted(counts.items())]
    return "\n".join([
        f"  - id: {customer_id}",
        f'    name: "{template.name} ({index + 1})"',
        f"    master_account_id: MA-{200000 + index}",
        f"    site_ids: [{', '.join(template.site_ids)}]",
        "    lens_tenant_id: null",
        f'    csm: {{name: "{csm_name}", email: {csm_email}}}',
        f"    partner_contacts: [{', '.join(template.contacts)}]",
        f"    currency: {template.currency}",
        f"    term: {{start: {first}-01, end: {last}-{_days_in(last):02d}}}",
        "    categories:",
        *categories,
        ""])
