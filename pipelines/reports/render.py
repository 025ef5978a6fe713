"""Rendering the month's reports: one partner-branded HTML and PDF per customer, and the
partner's portfolio. Jinja2 with autoescaping (device data is untrusted), WeasyPrint for the
PDF (CSS paged media), charts as inline SVG. One customer's failure never stops the others."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from importlib.metadata import version
from pathlib import Path

from pipelines.core.catalog import CATEGORIES
from pipelines.core.config import Config
from pipelines.core.files import write_atomically
from pipelines.core.i18n import Formats, jinja_environment
from pipelines.core.months import Month
from pipelines.core.progress import track
from pipelines.core.templates import TEMPLATES
from pipelines.core.timers import timed
from pipelines.reconcile import proration_start
from pipelines.reconciliation.month import compute_month
from pipelines.reconciliation.results import MonthResult
from pipelines.reports.charts import ChartLabels, category_chart
from pipelines.reports.contents import customer_report, portfolio
from pipelines.reports.evidence import write_evidence_pack
from pipelines.reports.versions import SentMessage, changes_since_sent, report_figures
from pipelines.warehouse.connection import open_warehouse, run_sql

log = logging.getLogger("polyrecon")
MAX_LOGO_BYTES = 512 * 1024  # it is embedded in every report and e-mailed PDF
# WeasyPrint reports every SVG property it ignores and fontTools every font it subsets: noise
# that drowned a scheduler's log (13,000 of 18,000 lines). Their errors still show.
for _chatty in ("weasyprint", "fontTools"):
    logging.getLogger(_chatty).setLevel(logging.ERROR)


@dataclass
class RenderOutcome:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # customer, what went wrong


@cache
def _environment(language: str):
    from jinja2 import FileSystemLoader, StrictUndefined

    return jinja_environment(FileSystemLoader(TEMPLATES), Formats(language),
                             undefined=StrictUndefined, autoescape=True, trim_blocks=True,
                             lstrip_blocks=True)


@cache
def chart_labels(language: str) -> ChartLabels:
    formats = Formats(language)
    return ChartLabels(baseline=formats.gettext("baseline in effect"),
                       counted=formats.gettext("devices counted"),
                       true_up=formats.gettext("true-up"),
                       no_data=formats.gettext("no inventory"),
                       before_onboarding=formats.gettext("before onboarding"),
                       month=formats.short_month, number=formats.number)


def _logo(config: Config) -> str | None:
    """The partner's logo as a data URI, so the HTML and PDF stand alone: an image in the
    workspace's config/ folder of at most MAX_LOGO_BYTES, or none (said in the log)."""
    if not config.partner.partner.logo:
        return None
    folder = config.workspace.config_dir.resolve()
    path = (folder / config.partner.partner.logo).resolve()
    if not path.is_relative_to(folder):
        problem = "lies outside the workspace's config/ folder: copy the image there"
    elif not path.is_file():
        problem = "is not found"
    elif path.stat().st_size > MAX_LOGO_BYTES:
        problem = (f"is larger than {MAX_LOGO_BYTES // 1024} KiB: save it smaller (a logo "
                   f"of 10 mm needs a few KiB)")
    else:
        with path.open("rb") as handle:
            data = handle.read(MAX_LOGO_BYTES + 1)
        kind = _image_kind(data)
        if kind is not None:
            return f"data:{kind};base64,{base64.b64encode(data).decode()}"
        problem = "is not a PNG, JPEG, GIF or SVG image"
    log.warning("partner.logo %r %s; the reports go out without a logo",
                config.partner.partner.logo, problem)
    return None


def _image_kind(data: bytes) -> str | None:
    """The image type by the file's first bytes, never by its name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<svg") or head.startswith(b"<?xml") and b"<svg" in data[:4096]:
        return "image/svg+xml"
    return None



def _pdf(html: str, target: Path) -> None:
    from weasyprint import HTML

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    HTML(string=html, base_url=str(target.parent)).write_pdf(temporary)
    temporary.replace(target)


def render_month(config: Config, month: Month, customer_id: str | None = None,
                 result: MonthResult | None = None, warehouse: Path | None = None
                 ) -> RenderOutcome:
    """The month's reports (of `result`, else computed), read from the warehouse or from the
    copy `warehouse` (warehouse/published.py)."""
    common = _common(config)
    folder = config.workspace.reports_for(month)
    outcome = RenderOutcome()
    with open_warehouse(config.workspace, read_only=True, path=warehouse) as con:
        result = result or compute_month(con, config, month)
        sent = [SentMessage(*row) for row in run_sql(
            con, "delivery/mail_sent_for_month.sql", month=str(month)).fetchall()]
        covered = {row.customer_id for row in result.rows}
        customers = [c for c in config.contracts.in_effect(month)
                     if c.id in covered and customer_id in (None, c.id)]
        for customer in track(customers, f"Rendering reports for {month}"):
            try:
                with timed("render"):
                    language = config.language_of(customer)
                    template = _environment(language).get_template("customer_report.html.j2")
                    data = customer_report(con, config, result, customer)
                    pack = write_evidence_pack(con, folder, customer.id, month, language,
                                               data.not_seen, data.not_seen_days)
                    outcome.written += [pack.xlsx, pack.csv]
                    formats = Formats(language)
                    updated = changes_since_sent(sent, customer.id, report_figures(
                        [r for r in result.rows if r.customer_id == customer.id]), formats)
                    labels = chart_labels(language)
                    charts = {s.row.category: category_chart(
                        s.history, config.partner.partner.primary_color, labels,
                        s.before_onboarding) for s in data.summaries}
                    html = template.render(**common, r=data, c=customer, charts=charts,
                                           pack=pack, updated=updated,
                                           proration_start=partial(proration_start,
                                                                   policy=config.policy))
                    outcome.written += _write(folder / customer.id, html)
            except Exception as error:  # noqa: BLE001 - one report must not stop the others
                log.error("report for %s failed: %s: %s", customer.id,
                          type(error).__name__, error)
                outcome.failed.append((customer.id, f"{type(error).__name__}: {error}"))
    if customer_id is None:
        outcome.written += _render_portfolio(config, result, common, warehouse)
    return outcome


def render_portfolio(config: Config, month: Month, result: MonthResult | None = None,
                     warehouse: Path | None = None) -> list[Path]:
    """Only the partner's portfolio report of the month (of `result`, when the caller has it)."""
    if result is None:
        with open_warehouse(config.workspace, read_only=True, path=warehouse) as con:
            result = compute_month(con, config, month)
    return _render_portfolio(config, result, _common(config), warehouse)


def _render_portfolio(config: Config, result: MonthResult, common, warehouse: Path | None
                      ) -> list[Path]:
    language = config.partner.partner.language  # the portfolio is the partner's
    with open_warehouse(config.workspace, read_only=True, path=warehouse) as con:
        quarantined = dict(run_sql(con, "reports/portfolio_quarantined.sql",
                                   month=str(result.month)).fetchall())
    lines, totals = portfolio(config, result, quarantined, Formats(language))
    html = _environment(language).get_template("portfolio.html.j2").render(
        **common, month=result.month, lines=lines, totals=totals, categories=CATEGORIES)
    return _write(config.workspace.reports_for(result.month) / "portfolio", html)


# Filled in once the page is known (_write): the time it was rendered, and what it was made from.
_GENERATED, _MADE_FROM = "@@generated@@", "@@made-from@@"
_RECORDED = re.compile(r'<meta name="polyrecon-made-from" content="([0-9a-f]{64}) ([0-9a-f]{64})">')


def _common(config: Config) -> dict:
    return {"partner": config.partner.partner, "policy": config.policy, "logo": _logo(config),
            "css": (TEMPLATES / "report.css").read_text(encoding="utf-8"),
            "generated": _GENERATED, "made_from": _MADE_FROM}


def _write(stem: Path, page: str) -> list[Path]:
    """The report's HTML and PDF, unless both are already what `page` makes: a month run again
    with nothing new keeps its files, the time they were generated included, and lays out no
    PDF (WeasyPrint is most of a report's time). The HTML records the page it was made from,
    all but that time, and the PDF it went with: a PDF replaced or cut short is made again."""
    html_path, pdf_path = stem.with_suffix(".html"), stem.with_suffix(".pdf")
    source = hashlib.sha256(f"{page}\nWeasyPrint {_weasyprint()}".encode()).hexdigest()
    if _made_from(html_path, pdf_path) == source:
        return [html_path, pdf_path]
    html = page.replace(_GENERATED, f"{datetime.now(UTC):%Y-%m-%d %H:%M}")
    _pdf(html.replace(_MADE_FROM, ""), pdf_path)
    made_from = f"{source} {hashlib.sha256(pdf_path.read_bytes()).hexdigest()}"
    write_atomically(html_path, html.replace(_MADE_FROM, made_from))
    return [html_path, pdf_path]


def _made_from(html_path: Path, pdf_path: Path) -> str | None:
    """The page an existing report was made from, if its PDF is the one made with it."""
    try:
        recorded = _RECORDED.search(html_path.read_text(encoding="utf-8"))
        if recorded and hashlib.sha256(pdf_path.read_bytes()).hexdigest() == recorded[2]:
            return recorded[1]
    except (OSError, UnicodeDecodeError):
        pass  # no report yet, or one that cannot be read: it is made again
    return None


@cache
def _weasyprint() -> str:
    return version("weasyprint")
