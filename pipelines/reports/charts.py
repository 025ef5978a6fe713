"""Charts as inline SVG, drawn server-side with matplotlib: no JavaScript in any report.

The term chart shows one category's months of the contract term: devices counted against the
baseline in effect, true-ups marked, months without an inventory shaded (apart from those before
the customer's onboarding). Its words and its
month and number formats come from the caller (`ChartLabels`), so one chart serves German and
English reports. The layout is computed from measured text widths rather than by
`tight_layout` (which would double the time of a chart drawn per category per customer), and
the same history always gives byte-identical SVG (no date, a fixed hash salt).
"""
from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipelines.core.months import Month
from pipelines.reconcile import to_cents
from pipelines.reconciliation.results import NO_DATA, TRUE_UP, CategoryMonth

WIDTH_IN, HEIGHT_IN = 6.3, 1.9  # the report's text width; the CSS scales the SVG to it
FONT_PT = 7
LABEL_GAP_PT = FONT_PT  # at least an em between month labels, so they read as separate
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "polyrecon",
          "font.size": FONT_PT, "font.family": "DejaVu Sans"}
_TICK_ROOM_PT = 3.5 + 3.5 + 3  # matplotlib's tick length and label pad, and a little air
_RIGHT_PT = 6.0


@dataclass(frozen=True)
class ChartLabels:
    """What the chart says, in the report's language: legend texts and tick label formats."""

    baseline: str = "baseline in effect"
    counted: str = "devices counted"
    true_up: str = "true-up"
    no_data: str = "no inventory"
    before_onboarding: str = "before onboarding"
    month: Callable[[Month], str] = str  # x tick labels; short ones ("Oct 26") fit each month
    number: Callable[[int | float], str] = "{:,.0f}".format  # y tick labels (whole devices)


def y_ticks(values: Sequence[float]) -> list[int]:
    """Whole-device ticks whose first and last tick are the y range: every value lies inside,
    with a little headroom, so the baseline never sits above the top tick."""
    from matplotlib.ticker import MaxNLocator

    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 1)
    locator = MaxNLocator(nbins=4, integer=True)
    return [int(t) for t in locator.tick_values(max(low - pad, 0), high + pad)]


def thin_labels(texts: Sequence[str], widths: Sequence[float], slot_pt: float) -> list[str]:
    """Every k-th label, the smallest k at which the widest no longer touch its neighbours;
    counted back from the last month, the one the report is about. The others are blank."""
    step = max(1, math.ceil((max(widths) + LABEL_GAP_PT) / slot_pt))
    last = len(texts) - 1
    return [text if (last - i) % step == 0 else "" for i, text in enumerate(texts)]


def category_chart(history: list[CategoryMonth], color: str,
                   labels: ChartLabels = ChartLabels(), before_onboarding: int = 0) -> str:
    """Devices counted each month against the baseline in effect; true-ups marked; the first
    `before_onboarding` months, before the customer's first inventory, shaded apart from
    months whose inventory is missing."""
    # matplotlib is imported here, not at the top: the CLI's other commands do not pay for it.
    # Figure, not pyplot: no global figure state to clean up.
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter

    counted = [m.counted if m.status != NO_DATA else math.nan for m in history]
    baseline = [float(to_cents(m.baseline)) for m in history]
    ticks = y_ticks([*baseline, *(c for c in counted if not math.isnan(c))])
    months = [labels.month(m.month) for m in history]
    figure_pt = WIDTH_IN * 72
    left_pt = max(text_width(labels.number(t)) for t in ticks) + _TICK_ROOM_PT
    month_widths = [text_width(text) for text in months]
    slot_pt = (figure_pt - left_pt - _RIGHT_PT) / len(history)
    shown = thin_labels(months, month_widths, slot_pt)
    # A thinned last label is wider than its month: keep its right half on the page.
    right_pt = max(_RIGHT_PT, (max(month_widths) - slot_pt) / 2 + 3)
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=100)
        figure.subplots_adjust(left=left_pt / figure_pt, right=1 - right_pt / figure_pt,
                               bottom=0.14, top=0.84)
        axes = figure.add_subplot()
        positions = list(range(len(history)))
        # Each month's baseline spans its whole month, so a true-up's new baseline starts at
        # the next month's edge, and a one-month term still shows its baseline.
        axes.stairs(baseline, [p - 0.5 for p in [*positions, len(history)]], baseline=None,
                    color="#888888", linewidth=1.2, label=labels.baseline)
        # clip_on=False: a marker on the bottom tick (0 devices) is drawn whole.
        axes.plot(positions, counted, color=color, marker="o", markersize=3, linewidth=1.6,
                  label=labels.counted, clip_on=False)
        ups = [i for i, m in enumerate(history) if m.status == TRUE_UP]
        if ups:
            axes.scatter(ups, [counted[i] for i in ups], s=60, marker="^", color="#c0392b",
                         zorder=3, label=labels.true_up, clip_on=False)
        if before_onboarding:
            axes.axvspan(-0.5, before_onboarding - 0.5, color="#d9d9d9", alpha=0.6,
                         linewidth=0, label=labels.before_onboarding)
        gaps = [i for i, m in enumerate(history) if m.status == NO_DATA and i >= before_onboarding]
        for n, i in enumerate(gaps):
            axes.axvspan(i - 0.4, i + 0.4, color="#f3d9a4", alpha=0.6, linewidth=0,
                         label=labels.no_data if n == 0 else None)  # one legend entry
        axes.set_xlim(-0.5, len(history) - 0.5)
        axes.set_xticks(positions, shown)
        axes.set_ylim(ticks[0], ticks[-1])
        axes.yaxis.set_major_locator(FixedLocator(ticks))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: labels.number(round(value))))
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        axes.legend(loc="lower left", frameon=False, ncols=4, bbox_to_anchor=(0, 1.0),
                    borderaxespad=0.2)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


@functools.lru_cache(maxsize=1024)  # the same months and numbers recur in every report
def text_width(text: str) -> float:
    """Width in points at FONT_PT, from the font's metrics: no renderer or drawing needed."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(family=_STYLE["font.family"], size=FONT_PT)
    return text_to_path.get_text_width_height_descent(text, font, ismath=False)[0]
