"""The reports' layout as WeasyPrint lays it out for the PDF, read from its boxes (no pixels):
no word or badge runs out of its table cell or off the page (German and English, a customer
id of 64 characters), a badge keeps its distance from the sentence it starts, a heading never
ends a page without the start of its table, and table cells hyphenate in the page's language."""
from pathlib import Path

import pytest
from builders import cli, contract, devices, drop, export_text, make_workspace
from weasyprint import CSS, HTML
from weasyprint.formatting_structure import boxes

from pipelines.core.templates import TEMPLATES

MONTH = "2026-10"  # the demo's month (conftest.full_demo)
LONG_ID = "hanseatische-logistik-und-speditionsgesellschaft-norddeutschland"
MM = 96 / 25.4  # CSS pixels, WeasyPrint's unit, per millimetre


@pytest.fixture(scope="module")
def long_id_workspace(tmp_path_factory) -> Path:
    """An English partner's month with a German customer whose id has 64 characters, whose name
    has German compounds and whose summary is the widest German one (NICHT ABGEDECKT beside a
    five-digit true-up), and an English customer on WATCH."""
    categories = {"headset": {"ordered_devices": 10, "unit_price_per_year": 12.0},
                  "video": {"ordered_devices": 100, "unit_price_per_year": 1500.0},
                  "voice": {"ordered_devices": 10, "unit_price_per_year": 24.0}}
    workspace = make_workspace(tmp_path_factory.mktemp("layout"), [
        contract(LONG_ID, categories={c: categories[c] for c in ("headset", "video")},
                 language="de",
                 name="Hanseatische Logistik und Speditionsgesellschaft Norddeutschland GmbH"),
        contract("thames", categories=categories, language="en", currency="GBP")])
    phones_and_headsets = devices("Blackwire 3220", 10, prefix="HS") \
        + devices("Poly VVX 450", 10, prefix="PH")
    drop(workspace, LONG_ID, "lens-2026-03.csv",
         export_text(devices("Poly Studio X30", 120) + phones_and_headsets))
    drop(workspace, "thames", "lens-2026-03.csv",
         export_text(devices("Poly Studio X30", 104) + phones_and_headsets))
    assert cli(workspace, "run", "--month", "2026-03") == 0
    return workspace.home / "reports" / "2026-03"


def _pages(path: Path):
    return HTML(filename=str(path)).render().pages


def _in_cells(box, cell=None):
    """Every box under `box`, with the table cell it lies in (None outside tables)."""
    if isinstance(box, boxes.TableCellBox):
        cell = box
    yield box, cell
    for child in getattr(box, "children", ()):
        yield from _in_cells(child, cell)


def _overruns(path: Path) -> list[tuple[int, str, str]]:
    """Every text or badge that reaches past its table cell's content box or the page's."""
    found = []
    for number, page in enumerate(_pages(path), 1):
        right_of_page = page._page_box.content_box_x() + page._page_box.width
        for box, cell in _in_cells(page._page_box):
            if not isinstance(box, (boxes.TextBox, boxes.InlineBlockBox)):
                continue
            text = box.text if isinstance(box, boxes.TextBox) else " ".join(
                b.text for b in box.descendants() if isinstance(b, boxes.TextBox))
            left, right = box.position_x, box.position_x + box.margin_width()
            if right > right_of_page + 1:
                found.append((number, "page", text))
            if cell is not None and (left < cell.content_box_x() - 1
                                     or right > cell.content_box_x() + cell.width + 1):
                found.append((number, "cell", text))
    return found


@pytest.mark.parametrize("report", ["portfolio.html", "rheintal-praezision.html",
                                    "hanseatische-logistik.html", "thames-valley-legal.html"])
def test_in_the_demo_no_text_or_badge_runs_out_of_its_column(full_demo, report):
    # The portfolio is the partner's German: BEOBACHTEN, ÜBERSCHRITTEN, True-Up-Betrag.
    assert _overruns(full_demo[0] / "reports" / MONTH / report) == []


@pytest.mark.parametrize("report", ["portfolio.html", f"{LONG_ID}.html"])
def test_a_64_character_customer_id_stays_in_its_column(long_id_workspace, report):
    # The portfolio is English here: "True-up amount" beside "RMA", Watch badges.
    assert _overruns(long_id_workspace / report) == []


def test_the_portfolio_is_a_landscape_page(full_demo):
    [page, *_] = _pages(full_demo[0] / "reports" / MONTH / "portfolio.html")
    assert page.width > page.height


def test_a_badge_keeps_its_distance_from_the_sentence_it_starts(full_demo):
    # The headset RMA line: "ÜBERSCHRITTEN 12 Headset-RMAs bei 210 bestellten Headsets".
    gaps = []
    for page in _pages(full_demo[0] / "reports" / MONTH / "hanseatische-logistik.html"):
        for line in page._page_box.descendants():
            if isinstance(line, boxes.LineBox):
                parts = list(line.children)
                gaps += [after.position_x - (badge.border_box_x() + badge.border_width())
                         for badge, after in zip(parts, parts[1:], strict=False)
                         if isinstance(badge, boxes.InlineBlockBox)
                         and "badge" in badge.element.get("class", "")]
    assert gaps
    assert min(gaps) >= 1 * MM


@pytest.mark.parametrize(("report", "language"), [("rheintal-praezision.html", "de"),
                                                  ("thames-valley-legal.html", "en")])
def test_table_cells_hyphenate_in_the_reports_language(full_demo, report, language):
    path = full_demo[0] / "reports" / MONTH / report
    assert f'<html lang="{language}">' in path.read_text(encoding="utf-8")
    cells = [box for page in _pages(path) for box in page._page_box.descendants()
             if isinstance(box, boxes.TableCellBox)]
    assert cells
    assert {(cell.style["hyphens"], cell.style["lang"]) for cell in cells} == {("auto", language)}


def _section_at(space_mm: int) -> str:
    rows = "".join(f"<tr><td>row{i}</td><td>Poly VVX 450</td></tr>" for i in range(8))
    return (f'<html lang="de"><body><div style="height: {space_mm}mm"></div>'
            f'<h2>Nicht gezählt</h2><p class="note">Poly Lens führt diese auf.</p>'
            f"<table><thead><tr><th>Gerät</th><th>Modell</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></body></html>")


def test_a_heading_keeps_its_introduction_and_first_rows_on_its_page():
    """Wherever the page breaks, a section's heading is followed on its page by its note and at
    least three rows, and no page starts with fewer than its last three rows."""
    css = CSS(filename=str(TEMPLATES / "report.css"))
    for space in range(150, 250, 3):
        pages = HTML(string=_section_at(space)).render(stylesheets=[css]).pages
        texts = [[b.text for b in page._page_box.descendants() if isinstance(b, boxes.TextBox)]
                 for page in pages]
        rows = [[t for t in page if t.startswith("row")] for page in texts]
        [heading_page] = [i for i, page in enumerate(texts) if "Nicht gezählt" in page]
        assert "Poly Lens führt diese auf." in texts[heading_page], space
        assert len(rows[heading_page]) >= 3, (space, rows)
        assert all(len(page_rows) >= 3 for page_rows in rows if page_rows), (space, rows)
