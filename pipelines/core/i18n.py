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
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from pipelines.core.months import Month

LANGUAGES = ("en", "de")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "polyrecon"
# The CLDR locale each language's formats follow: a German partner writes 9.000,00 €.
_LOCALES = {"en": "en", "de": "de_DE"}


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


# What reports and e-mails call categories and statuses; German: the program's own terms.
CATEGORY_NAMES = {"headset": N_("headset"), "video": N_("video"), "voice": N_("voice"),
                  "quote_only": N_("quote_only"), "unclassified": N_("unclassified"),
                  "not_counted": N_("not_counted")}
STATUS_NAMES = {"OK": N_("OK"), "WATCH": N_("WATCH"), "TRUE_UP": N_("TRUE_UP"),
                "NO_DATA": N_("NO_DATA"), "NOT_COVERED": N_("NOT_COVERED"),
                "QUOTE_REQUIRED": N_("QUOTE_REQUIRED"), "UNCLASSIFIED": N_("UNCLASSIFIED"),
                "BREACH": N_("BREACH")}


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

    def month(self, month: Month | str) -> str:
        """`October 2026` / `Oktober 2026`."""
        from babel.dates import format_date

        month = Month.parse(str(month))
        return format_date(month.first_day, "LLLL yyyy", locale=self.locale)

    def short_month(self, month: Month) -> str:
        """`Oct 26` / `Okt 26`: a chart's axis."""
        from babel.dates import format_date

        return format_date(month.first_day, "LLL yy", locale=self.locale).replace(".", "")


def jinja_environment(loader, formats: Formats, **options):
    """A Jinja2 environment whose `{% trans %}` and `_()` speak `formats.language`, with the
    format filters every template uses."""
    from jinja2 import Environment

    environment = Environment(loader=loader, extensions=["jinja2.ext.i18n"], **options)
    environment.install_gettext_translations(translations(formats.language), newstyle=True)
    environment.filters.update(number=formats.number, decimal=formats.decimal,
                               money=formats.money, date=formats.date, month=formats.month)
    environment.globals.update(formats=formats, category_name=formats.category,
                               status_name=formats.status)
    return environment
