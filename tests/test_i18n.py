"""German and English: every text translated, CLDR formats, plural forms, and machine files
that stay the same whatever the language."""
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from builders import (
    cli,
    contract,
    devices,
    drop,
    export_text,
    make_workspace,
    write_yaml,
)

from pipelines.core.i18n import LANGUAGES, LOCALE_DIR, Formats
from pipelines.core.months import Month

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "NP_": (1, 2)}


def _extracted() -> set[str]:
    """What `make messages` extracts: the msgids of the code and the templates."""
    found = set()
    for base, method in (("pipelines", "python"), ("reports/templates", "jinja2")):
        for _, _, message, _, _ in extract_from_dir(
                ROOT / base, [("**.py", "python")] if method == "python" else
                [("**.j2", "jinja2")], keywords=KEYWORDS,
                options_map={"**.j2": {"extensions": "jinja2.ext.i18n"}}):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


FOLDERS = sorted(p.name for p in LOCALE_DIR.iterdir() if p.is_dir())


def test_the_languages_are_english_and_one_per_locale_folder():
    assert sorted(LANGUAGES) == sorted(["en", *FOLDERS])


@pytest.mark.parametrize("language", FOLDERS)
def test_every_text_of_the_code_and_templates_is_translated(language):
    with (LOCALE_DIR / language / "LC_MESSAGES" / "polyrecon.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {(m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog
                  if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))}
    extracted = _extracted()
    assert len(extracted) > 150
    assert sorted(extracted - translated) == []  # run `make messages` and translate them


def test_formats_and_plural_forms_per_language():
    de, en = Formats("de"), Formats("en")
    from datetime import date
    from decimal import Decimal

    assert de.money(Decimal("9000.00"), "EUR") == "9.000,00\xa0€"
    assert en.money(Decimal("9000.00"), "EUR") == "9,000.00 EUR"
    assert (de.number(1234), en.number(1234)) == ("1.234", "1,234")
    assert (de.date(date(2026, 11, 1)), en.date(date(2026, 11, 1))) == (
        "1. November 2026", "November 1, 2026")
    assert (de.month("2026-10"), en.month("2026-10")) == ("Oktober 2026", "October 2026")
    row = ("%(num)s row", "%(num)s rows")
    assert [de.ngettext(*row, n) % {"num": n} for n in (1, 2)] == ["1 Zeile", "2 Zeilen"]
    assert [en.ngettext(*row, n) % {"num": n} for n in (1, 2)] == ["1 row", "2 rows"]
    assert de.category("headset") == "Headsets/Nur persönliche Geräte"
    assert (de.category("video"), de.category("voice")) == ("Nur Video", "Nur Sprache")


VIDEO = {"video": {"ordered_devices": 1000, "unit_price_per_year": 180.0}}


def _workspace(root: Path, language: str):
    workspace = make_workspace(root, [contract("acme", categories=VIDEO,
                                               term=("2026-01-01", "2026-03-31"))])
    write_yaml(workspace.partner_file, {"partner": {"name": "Nordlicht",
                                                    "contact_email": "ops@partner.example",
                                                    "language": language}})
    drop(workspace, "acme", "lens-2026-03.csv", export_text(devices("Poly Studio X30", 1060)))
    drop(workspace, "acme", "notes-2026-03.csv", "just,notes\n")  # rejected: a notice
    return workspace


def test_the_machine_files_are_the_same_in_either_language(tmp_path):
    files = {}
    for language in ("en", "de"):
        workspace = _workspace(tmp_path / language, language)
        assert cli(workspace, "run", "--month", "2026-03") == 0
        folder = workspace.reports_for(Month(2026, 3))
        files[language] = {name: (folder / name).read_bytes() for name in (
            "reconciliation.csv", "rma.csv", "renewal-acme.yaml")}
    assert files["de"] == files["en"]
    assert b",900.00,EUR," in files["de"]["reconciliation.csv"]  # digits and a point


def test_a_german_partner_s_e_mails_and_report_are_german(tmp_path):
    workspace = _workspace(tmp_path, "de")
    assert cli(workspace, "run", "--month", "2026-03") == 0
    subjects = {}
    for path in (workspace.outbox / "2026-03").glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        subjects[path.name.split("-")[0]] = (message["Subject"],
                                             message.get_body(("plain",)).get_content())
    subject, text = subjects["report"]
    assert subject == "[Nordlicht] Poly+ Enterprise Bericht 2026-03: Acme GmbH"
    assert "anbei erhalten Sie den Poly+ Enterprise Bericht von Acme GmbH für März 2026." in text
    assert "Gesendet von polyrecon" in text
    subject, text = subjects["true_up"]
    assert subject == "[Nordlicht] True-Up Acme GmbH Nur Video 2026-03: +60 Geräte, 900,00\xa0€"
    assert "1.060 Geräte (Nur Video) im März 2026 gezählt bei 1.000 bestellten" in text
    subject, text = subjects["file_rejected"]
    assert subject.startswith("[Nordlicht] Datei abgelehnt für Acme GmbH: notes-2026-03.csv")
    html = (workspace.reports_for(Month(2026, 3)) / "acme.html").read_text()
    assert 'lang="de"' in html
    assert "Servicelaufzeit 1. Januar 2026 – 31. März 2026" in html
    assert "900,00\xa0€" in html
    assert "Verlängerungsvorschlag" in html
    assert "1.060 Geräte gezählt (Stand 2026-03); 1.060 bestellt laut gültigem Vertrag" in html


def _reason_file(root: Path, language: str):
    """The workspace of a partner in `language` after a run, and its rejected file's reason."""
    workspace = _workspace(root, language)
    assert cli(workspace, "run", "--month", "2026-03") == 0
    return workspace, (workspace.quarantine / "acme" / "notes-2026-03.csv.reason.txt").read_text()


def test_a_german_partner_reads_why_a_file_was_rejected_in_german(tmp_path):
    workspace, reason = _reason_file(tmp_path, "de")
    assert reason.splitlines()[0] == "Datei:          inbox/acme/notes-2026-03.csv"
    assert "Problem:        keine Modellspalte: erwartet wird eine von 'Device Type'" in reason
    assert "in der Kopfzeile (Zeile 1), gefunden: 'just', 'notes'" in reason
    assert "Was zu tun ist: Korrigieren Sie die Datei" in reason
    notice = next((workspace.outbox / "2026-03").glob("file_rejected-*.eml"))
    text = message_from_bytes(notice.read_bytes(), policy=policy.default).get_body(
        ("plain",)).get_content()
    assert "Problem: keine Modellspalte" in text
    assert "(aufbewahrt als quarantine/acme/notes-2026-03.csv)" in text


def test_an_english_partner_s_reason_file_is_as_it_always_was(tmp_path):
    _, reason = _reason_file(tmp_path, "en")
    assert reason.splitlines()[0] == "File:       inbox/acme/notes-2026-03.csv"
    assert ("Problem:    no model column: expected one of 'Device Type', 'Model', 'Model Name', "
            "'hardwareModel', 'Product', 'device_model' or 'Modell' in the header row (row 1), "
            "found: 'just', 'notes'\n") in reason


def test_data_quality_findings_speak_the_customer_s_language(tmp_path):
    workspace = _workspace(tmp_path, "de")
    rows = devices("Poly Studio X30", 1060) + [{"device_model": "Poly Studio X30"}]
    drop(workspace, "acme", "lens-2026-03.csv", export_text(rows))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    html = (workspace.reports_for(Month(2026, 3)) / "acme.html").read_text()
    assert ("1 von 1.061 Zeilen hat weder Seriennummer noch MAC-Adresse noch Lens-Geräte-ID: "
            "sie wird nicht gezählt") in html
    assert "<td>Zeilen nicht gezählt</td>" in html
