"""One device is "1 device" and "1 Gerät": every count a person reads takes its language's
gettext plural form, in the pages, the e-mails, the command line and `status`; and every
language folder translates every message, plural forms complete."""
import contextlib
import io
import re
from email import message_from_bytes, policy

import pytest
from babel.messages.pofile import read_po
from builders import cli, contract, devices, drop, export_text, make_workspace, write_yaml

from pipelines.core.config import load_config
from pipelines.core.i18n import LOCALE_DIR, Formats, PreviousWords
from pipelines.core.months import Month
from pipelines.delivery.messages import compose, what_holds
from pipelines.reconciliation.month import stored_month
from pipelines.warehouse.connection import open_warehouse

# Its module fixture `march` is made once per language: the module runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("plurals")

FOLDERS = sorted(p.name for p in LOCALE_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize("language", FOLDERS)
def test_every_message_of_a_language_folder_is_translated_with_all_its_plural_forms(language):
    with (LOCALE_DIR / language / "LC_MESSAGES" / "polyrecon.po").open("rb") as handle:
        catalog = read_po(handle)
    assert catalog.num_plurals >= 1
    untranslated, incomplete, plurals = [], [], 0
    for message in list(catalog)[1:]:  # the first is the header
        if isinstance(message.id, tuple):
            plurals += 1
            forms = message.string if isinstance(message.string, tuple) else ()
            if len(forms) != catalog.num_plurals or not all(forms):
                incomplete.append(message.id[0])
        elif not message.string:
            untranslated.append(message.id)
        assert not message.fuzzy, message.id
    assert plurals > 20
    assert (untranslated, incomplete) == ([], [])
    # the same %(name)s places as the English, in every form
    assert [(m.id, errors) for m, errors in catalog.check()] == []


# Two customers of 20 video devices and 20 headsets ordered: in March "one" has one video
# device and one headset RMA more than ordered, "two" two of each.
ORDERED = {"video": {"ordered_devices": 20, "unit_price_per_year": 120.0},
           "headset": {"ordered_devices": 20, "unit_price_per_year": 12.0}}


@pytest.fixture(scope="module", params=["en", "de"])
def march(request, tmp_path_factory):
    """A partner in English or German after February and March were run: the workspace and
    what `run --month 2026-03` and `status` printed."""
    language = request.param
    workspace = make_workspace(tmp_path_factory.mktemp(language), [
        contract(name, categories=ORDERED) for name in ("one", "two")])
    write_yaml(workspace.partner_file, {"partner": {
        "name": "Nordlicht", "contact_email": "ops@partner.example", "language": language}})
    headsets = devices("Poly Voyager Focus 2", 20)
    for name in ("one", "two"):
        drop(workspace, name, "lens-2026-02.csv",
             export_text(headsets + devices("Poly Studio X30", 20, prefix="V")))
    assert cli(workspace, "run", "--month", "2026-02") == 0
    for n, name in ((1, "one"), (2, "two")):
        drop(workspace, name, "lens-2026-03.csv",
             export_text(headsets + devices("Poly Studio X30", 20 + n, prefix="V")))
        drop(workspace, name, "rma-2026-03.csv", "rma_number,date,serial,model\n" + "".join(
            f"R{i},2026-03-0{1 + i},SN{i:06d},Poly Voyager Focus 2\n" for i in range(n)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(workspace, "run", "--month", "2026-03") == 0
        assert cli(workspace, "status") == 0
    return language, workspace, out.getvalue()


def _mail(workspace, kind: str, customer: str) -> tuple[str, str]:
    [path] = (workspace.outbox / "2026-03").glob(f"{kind}-{customer}-*.eml")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    return message["Subject"], message.get_body(("plain",)).get_content()


def _page(workspace, customer: str) -> str:
    return (workspace.home / "reports" / "2026-03" / f"{customer}.html").read_text()


# What each reads for one device (one RMA) and for two, in the e-mails and the report.
SAID = {
    ("en", "one"): {
        "true_up subject": ": +1 device, ",
        "true_up": ["1 device to add, prorated amount",
                    "21 Video devices counted in March 2026 against 20 ordered"],
        "rma": ["1 headset RMA in 2026 up to March 2026 against 20 ordered headsets"],
        "page": ["1 device added (21 counted against 20 ordered)", "1 device added, 0 removed",
                 "1 headset RMA against 20 ordered headsets"]},
    ("en", "two"): {
        "true_up subject": ": +2 devices, ",
        "true_up": ["2 devices to add, prorated amount"],
        "rma": ["2 headset RMAs in 2026 up to March 2026 against 20 ordered headsets"],
        "page": ["2 devices added (22 counted against 20 ordered)", "2 devices added, 0 removed",
                 "2 headset RMAs against 20 ordered headsets"]},
    ("de", "one"): {
        "true_up subject": ": +1 Gerät, ",
        "true_up": ["1 Gerät ist nachzulizenzieren, anteiliger Betrag",
                    "21 Geräte (Nur Video) im März 2026 gezählt bei 20 bestellten"],
        "rma": ["1 Headset-RMA 2026 bis März 2026 bei 20 bestellten Headsets"],
        "page": ["1 zusätzliches Gerät (21 gezählt bei 20 bestellten)",
                 "1 Gerät hinzugekommen, 0 entfernt",
                 "1 Headset-RMA bei 20 bestellten Headsets"]},
    ("de", "two"): {
        "true_up subject": ": +2 Geräte, ",
        "true_up": ["2 Geräte sind nachzulizenzieren, anteiliger Betrag"],
        "rma": ["2 Headset-RMAs 2026 bis März 2026 bei 20 bestellten Headsets"],
        "page": ["2 zusätzliche Geräte (22 gezählt bei 20 bestellten)",
                 "2 Geräte hinzugekommen, 0 entfernt",
                 "2 Headset-RMAs bei 20 bestellten Headsets"]},
}
# 1 (not 21) with a plural
WRONG = {"en": re.compile(r"(?<![\d.,])1 (devices|headset RMAs)\b"),
         "de": re.compile(r"(?<![\d.,])1 (Geräte|zusätzliche|Headset-RMAs)\b")}


@pytest.mark.parametrize("customer", ["one", "two"])
def test_the_e_mails_and_the_report_say_one_device_and_two_devices(march, customer):
    language, workspace, _ = march
    said = SAID[(language, customer)]
    subject, true_up = _mail(workspace, "true_up", customer)
    assert said["true_up subject"] in subject
    for sentence in said["true_up"]:
        assert sentence in true_up
    _, rma = _mail(workspace, "rma", customer)
    for sentence in said["rma"]:
        assert sentence in rma
    page = _page(workspace, customer)
    for sentence in said["page"]:
        assert sentence in page
    for text in (subject, true_up, rma, page):
        assert WRONG[language].findall(text) == []


def test_the_command_line_and_status_say_one_device_in_words(march):
    _, _, out = march  # the command line and `status` are English in either language
    assert "2026-03: 2 customers reconciled; " in out
    assert "  True-up one Video: +1 device, " in out
    assert "  True-up two Video: +2 devices, " in out
    assert "  RMA Watch one: 5.00 % (1 of 20 headsets)" in out
    assert "  2026-03 one Video True-up: +1 device, " in out  # status
    assert "  2026-03 two Video True-up: +2 devices, " in out
    assert "  2026-03 one RMA Watch: 5.00 % (1 headset RMA, 20 headsets)" in out
    assert "  2026-03 two RMA Breach: 10.00 % (2 headset RMAs, 20 headsets)" in out
    for key in ("TRUE_UP", "WATCH", "BREACH", " video", " headset,", "1 devices"):
        assert key not in out


@pytest.mark.parametrize(("language", "now"), [
    ("en", ["Video true-up +1 device, prorated amount 10.00 EUR (21 counted against 20 "
            "ordered).", "headset RMA rate 5.00 % (1 RMA against 20 headsets): Watch.",
            "Video Watch: 1 device counted against 1 ordered (growth 0.00 %); no true-up "
            "is due."]),
    ("de", ["Nur Video: True-Up +1 Gerät, anteiliger Betrag 10,00\xa0€ (21 gezählt bei 20 "
            "bestellten).", "Headset-RMA-Quote 5,00 % (1 RMA bei 20 Headsets): BEOBACHTEN.",
            "Nur Video BEOBACHTEN: 1 Gerät gezählt bei 1 bestellten (Wachstum 0,00 %); kein "
            "True-Up fällig."])])
def test_what_a_correction_says_holds_now_says_one_device(language, now):
    from decimal import Decimal

    f = Formats(language)
    assert [what_holds("video", {"status": "TRUE_UP", "added": 1, "amount": Decimal("10.00"),
                                 "currency": "EUR", "counted": 21, "ordered": 20}, f),
            what_holds("rma", {"rate": Decimal("5.00"), "rmas": 1, "base": 20,
                               "status": "WATCH"}, f),
            what_holds("video", {"status": "WATCH", "counted": 1, "ordered": 1,
                                 "growth": Decimal("0.00")}, f)] == now



def test_a_ledger_keyed_by_its_wording_is_re_keyed_with_the_plural_it_was_worded_with(march):
    """Keys before issue 27 hashed the subject: the true-up of one device was "+1 devices" /
    "+1 Geräte" then, and re-keying such a ledger must word it so again (rekey.py)."""
    language, workspace, _ = march
    config = load_config(workspace)
    with open_warehouse(workspace, read_only=True) as con:
        result = stored_month(con, config, Month(2026, 3))

    def subject(formats) -> str:
        return next(d.subject for d in compose(config, result, formats=formats)
                    if d.kind == "true_up" and d.customer_id == "one")

    then, now = {"en": ("video 2026-03: +1 devices, ", "Video 2026-03: +1 device, "),
                 "de": ("Nur Video 2026-03: +1 Geräte, ", "Nur Video 2026-03: +1 Gerät, ")
                 }[language]
    assert then in subject(PreviousWords)
    assert now in subject(Formats)
