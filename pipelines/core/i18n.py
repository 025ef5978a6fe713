"""Languages of what people read: the reports, the portfolio, the e-mails, the reason files.

Texts are gettext messages: English in the templates and the code, other languages in
`pipelines/locale/<language>/LC_MESSAGES/polyrecon.po` (extracted with `make messages`, which
runs pybabel). The .po files are compiled when first used (Babel), so no binary .mo file is
kept in the repository. Numbers, amounts, dates and month names are Babel's CLDR formats, one
style per language everywhere (text, tables, charts). The command line, logs and the machine
files (reconciliation.csv, rma.csv, renewal YAML) stay English and `9000.00`.
"""
from __future__ import annotations

import gettext
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from pipelines.core.visible import visible

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "polyrecon"
# Every language, with the CLDR locale its formats follow (a German partner writes 9.000,00 €):
# English, and one folder of LOCALE_DIR for each other. partner.yaml and contracts.yaml take these.
_LOCALES = {"en": "en", "de": "de_DE"}
LANGUAGES = tuple(_LOCALES)


def N_(message: str) -> str:
    """A message translated where it is shown (a template's `_()`), marked for extraction."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """A message with plural forms, translated where it is shown by `ngettext`."""
    return singular, plural


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The language's messages (English: the texts as written)."""
    if language == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


# What reports, e-mails, the command line and `status` call categories and statuses (the
# machine keys stay in the CSV files and class names); German: the program's own terms.
CATEGORY_NAMES = {"headset": N_("Headsets"), "video": N_("Video"), "voice": N_("Voice"),
                  "quote_only": N_("Quote only"), "unclassified": N_("Unclassified"),
                  "not_counted": N_("Not counted")}
STATUS_NAMES = {"OK": N_("OK"), "WATCH": N_("Watch"), "TRUE_UP": N_("True-up"),
                "NO_DATA": N_("No data"), "NOT_COVERED": N_("Not covered"),
                "QUOTE_REQUIRED": N_("Quote required"), "UNCLASSIFIED": N_("Not classified"),
                "BREACH": N_("Breach"), "ONBOARDING": N_("Before onboarding")}


def english(singular: str, plural: str, count: int, **values) -> str:
    """A count as the command line, `status` and logs say it, in the English they keep:
    `1 file waits`, `2 files wait` (`%(num)s` is the count). English's gettext plural rule, as
    every count a person reads; not marked for translation, since those texts stay English."""
    return translations("en").ngettext(singular, plural, count) % {"num": count, **values}


@dataclass(frozen=True)
class Formats:
    """Numbers, amounts and dates as a reader of `language` writes them."""

    language: str = "en"

    @property
    def locale(self) -> str:
        return _LOCALES[self.language]

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return translations(self.language).ngettext(singular, plural, count)

    def category(self, name: str) -> str:
        return self.gettext(CATEGORY_NAMES.get(name, name))

    def status(self, name: str) -> str:
        return self.gettext(STATUS_NAMES.get(name, name))

    def number(self, value: int | None) -> str:
        from babel.numbers import format_decimal

        return "–" if value is None else format_decimal(value, "#,##0", locale=self.locale)

    def decimal(self, value: Decimal | None) -> str:
        """Two decimals: baselines and percentages."""
        from babel.numbers import format_decimal

        return "–" if value is None else format_decimal(value, "#,##0.00", locale=self.locale,
                                                        decimal_quantization=False)

    def money(self, amount: Decimal | None, currency: str) -> str:
        """English `9,000.00 EUR` (the code, as the machine files and subjects have it);
        German `9.000,00 €`."""
        if amount is None:
            return "–"
        if self.language == "en":
            return f"{self.decimal(amount)} {currency}"
        from babel.numbers import format_currency

        return format_currency(amount, currency, locale=self.locale)

    def date(self, day: date) -> str:
        from babel.dates import format_date

        return format_date(day, "long", locale=self.locale)

    def month(self, month) -> str:
        """`October 2026` / `Oktober 2026` (a `Month`, or its `YYYY-MM`)."""
        from babel.dates import format_date

        return format_date(_first_day(month), "LLLL yyyy", locale=self.locale)

    def short_month(self, month) -> str:
        """`Oct 26` / `Okt 26`: a chart's axis."""
        from babel.dates import format_date

        return format_date(_first_day(month), "LLL yy", locale=self.locale).replace(".", "")


def _first_day(month) -> date:
    # A Month prints as YYYY-MM; this module imports no other of the project's but the leaf
    # `visible`, so that any may say things in any language.
    return date.fromisoformat(f"{month}-01")


@dataclass(frozen=True)
class Message:
    """A sentence kept as its English text (a gettext message id with `%(name)s` places) and
    the values of those places, to be shown later in its reader's language: a reason file or
    a notice in the partner's, a report's finding in the customer's. A whole number among the
    values takes the reader's format; a value may be a message itself. `plural` (with the
    value named `count`) gives the plural form. English, `str(message)`, is what logs and the
    command line show."""

    text: str
    values: tuple[tuple[str, str | int | Message], ...] = ()
    plural: str | None = None
    count: str | None = None

    @classmethod
    def of(cls, text: str, plural: str | None = None, count: str | None = None,
           **values: str | int | Message) -> Message:
        return cls(text, tuple(sorted(values.items())), plural, count)

    @classmethod
    def verbatim(cls, text: str) -> Message:
        """A text written before messages were kept (an older ledger line): shown as it is."""
        return cls.of("%(text)s", text=text)

    def shown(self, formats: Formats) -> str:
        values = {name: value.shown(formats) if isinstance(value, Message)
                  else formats.number(value) if isinstance(value, int) else value
                  for name, value in self.values}
        if self.plural is not None:
            count = dict(self.values)[self.count]
            return formats.ngettext(self.text, self.plural, count) % values
        return formats.gettext(self.text) % values

    def __str__(self) -> str:
        return self.shown(Formats("en"))

    def to_json(self) -> str:
        return json.dumps(self._plain(), ensure_ascii=False, sort_keys=True)

    def _plain(self) -> dict:
        plain = {"text": self.text, "values": {
            name: value._plain() if isinstance(value, Message) else value
            for name, value in self.values}}
        if self.plural is not None:
            plain.update(plural=self.plural, count=self.count)
        return plain

    @classmethod
    def from_json(cls, text: str) -> Message:
        return cls._from_plain(json.loads(text))

    @classmethod
    def _from_plain(cls, plain: dict) -> Message:
        return cls.of(plain["text"], plain.get("plural"), plain.get("count"), **{
            name: cls._from_plain(value) if isinstance(value, dict) else value
            for name, value in plain["values"].items()})

    @classmethod
    def stored(cls, message_json: str | None, english: str) -> Message:
        """A message as a ledger keeps it: its JSON, or for older lines the English text."""
        return cls.from_json(message_json) if message_json else cls.verbatim(english)


def jinja_environment(loader, formats: Formats, **options):
    """A Jinja2 environment whose `{% trans %}` and `_()` speak `formats.language`, with the
    format filters every template uses."""
    from jinja2 import Environment
    from markupsafe import Markup

    def shown(value):
        # Every value a template prints, with its hidden characters made visible (our own
        # markup, a chart's SVG, passes as it is).
        return visible(value, keep="\n\t") if isinstance(value, str) \
            and not isinstance(value, Markup) else value

    environment = Environment(loader=loader, extensions=["jinja2.ext.i18n"], finalize=shown,
                              **options)
    environment.install_gettext_translations(translations(formats.language), newstyle=True)
    environment.filters.update(number=formats.number, decimal=formats.decimal,
                               money=formats.money, date=formats.date, month=formats.month)
    environment.globals.update(formats=formats, category_name=formats.category,
                               status_name=formats.status)
    return environment


# What the version before issue 30 called categories and statuses (English showed the keys):
# the ledger keeps messages and tables worded so, and its keys are re-keyed by wording them so.
_PREVIOUS_WORDS = {"de": {
    "headset": "Headsets/Nur persönliche Geräte", "video": "Nur Video", "voice": "Nur Sprache",
    "quote_only": "nur auf Angebot", "unclassified": "unbekannt", "not_counted": "nicht gezählt",
    "OK": "OK", "WATCH": "BEOBACHTEN", "TRUE_UP": "TRUE-UP", "NO_DATA": "KEINE DATEN",
    "NOT_COVERED": "NICHT ABGEDECKT", "QUOTE_REQUIRED": "ANGEBOT NÖTIG",
    "UNCLASSIFIED": "UNBEKANNT", "BREACH": "ÜBERSCHRITTEN"}}


@dataclass(frozen=True)
class PreviousWords(Formats):
    """Formats with the category and status words of the version before issue 30."""

    def category(self, name: str) -> str:
        return _PREVIOUS_WORDS.get(self.language, {}).get(name, name)

    def status(self, name: str) -> str:
        return _PREVIOUS_WORDS.get(self.language, {}).get(name, name)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """The plural whatever the count: that version's messages said "+1 devices" (issue 30
        kept each of those texts, and its translation, as the plural form)."""
        return super().ngettext(singular, plural, 2)
