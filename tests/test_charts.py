"""The term chart as a reader sees it: whole-device ticks, a y range holding every value shown,
month labels that never run together, a legend for every mark, the caller's words and formats,
and the same SVG for the same history."""
import itertools
import xml.etree.ElementTree as ET
from fractions import Fraction

import matplotlib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.months import Month
from pipelines.reconciliation.results import NO_DATA, OK, TRUE_UP, CategoryMonth
from pipelines.reports.charts import (
    LABEL_GAP_PT,
    WIDTH_IN,
    ChartLabels,
    category_chart,
    text_width,
    thin_labels,
    y_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
GERMAN_MONTHS = ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov",
                 "Dez")
GERMAN = ChartLabels(baseline="gültige Baseline", counted="gezählte Geräte",
                     true_up="Nachlizenzierung", no_data="kein Inventar",
                     month=lambda m: f"{GERMAN_MONTHS[m.month - 1]} {m.year % 100:02d}",
                     number=lambda n: f"{n:,.0f}".replace(",", "."))
SHORT = ChartLabels(month=lambda m: f"{m.month:02d}/{m.year % 100:02d}")


def history(counts: list[int | None], ordered: int = 100) -> list[CategoryMonth]:
    """A term from 2025-11, one month per count (None: no inventory), buffer 5 %, trigger 15 %."""
    months = []
    for i, counted in enumerate(counts):
        month, baseline = Month(2025, 11).plus(i), Fraction(ordered * 105, 100)
        if counted is None:
            months.append(CategoryMonth(month, "video", NO_DATA, ordered, baseline))
        elif counted * 100 >= ordered * 115:
            months.append(CategoryMonth(month, "video", TRUE_UP, ordered, baseline, counted,
                                        true_up_devices=counted - ordered, new_ordered=counted))
            ordered = counted
        else:
            months.append(CategoryMonth(month, "video", OK, ordered, baseline, counted))
    return months


TWELVE = history([101, 104, 108, 111, 118, None, 119, 121, 125, 127, 131, 134])


def tick_labels(svg: str, axis: str) -> list[str]:
    """The text of each tick of `axis` ("x" or "y"), "" where a tick has no label."""
    groups = [g for g in ET.fromstring(svg).iter(f"{SVG}g")
              if g.get("id", "").startswith(f"{axis}tick_")]
    return ["".join("".join(t.itertext()) for t in g.iter(f"{SVG}text")) for g in groups]


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_device_ticks_are_whole_numbers():
    # Counts within three devices of each other: matplotlib's own ticks would be 116.5, 117.5...
    svg = category_chart(history([116, 117, 119, 118], ordered=112), "#1f6feb")
    labels = tick_labels(svg, "y")
    assert labels
    assert all(label.replace(",", "").isdigit() for label in labels), labels


def test_the_y_range_holds_a_baseline_above_every_count():
    months = history([90, 92, 95, 97, 99, 100, 98, 97, 96, 99, 100, 100])  # baseline 105
    ticks = [int(label.replace(",", "")) for label in tick_labels(category_chart(months, "#000"),
                                                                  "y")]
    assert ticks == sorted(ticks)
    assert ticks[-1] > 105
    assert ticks[0] <= 90


@given(st.lists(st.one_of(st.integers(0, 100_000),
                          st.fractions(0, 100_000, max_denominator=100).map(float)),
                min_size=1, max_size=40))
def test_y_ticks_are_whole_and_hold_every_value_with_headroom(values):
    ticks = y_ticks(values)
    assert all(isinstance(t, int) for t in ticks)
    assert len(ticks) >= 2
    assert ticks == sorted(set(ticks))
    assert ticks[0] >= 0
    assert ticks[0] <= min(values)
    assert ticks[-1] > max(values)


def test_no_inventory_is_in_the_legend_exactly_when_a_month_has_none():
    assert "no inventory" in texts(category_chart(TWELVE, "#1f6feb"))
    assert "no inventory" not in texts(category_chart(history([101, 104, 118, 119]), "#1f6feb"))
    assert "true-up" in texts(category_chart(TWELVE, "#1f6feb"))


def test_twelve_months_are_labelled_each_with_the_callers_month_format():
    assert tick_labels(category_chart(TWELVE, "#1f6feb", SHORT), "x") == [
        SHORT.month(m.month) for m in TWELVE]


@pytest.mark.parametrize("months", [1, 2, 12, 13, 24, 37])
@pytest.mark.parametrize("labels", [ChartLabels(), GERMAN], ids=["YYYY-MM", "German"])
def test_month_labels_never_run_together_nor_leave_the_page(months, labels):
    svg = category_chart(history([100 + i for i in range(months)]), "#1f6feb", labels)
    root = ET.fromstring(svg)
    shown = [(float(t.get("x")), "".join(t.itertext())) for g in root.iter(f"{SVG}g")
             if g.get("id", "").startswith("xtick_") for t in g.iter(f"{SVG}text")]
    assert shown[-1][1] == labels.month(Month(2025, 11).plus(months - 1))  # the report's month
    spans = [(x - text_width(text) / 2, x + text_width(text) / 2) for x, text in shown]
    assert spans[0][0] >= 0
    assert spans[-1][1] <= WIDTH_IN * 72
    assert all(right + LABEL_GAP_PT <= left
               for (_, right), (left, _) in itertools.pairwise(spans))


def test_thinned_labels_keep_the_last_month_and_a_fixed_step():
    texts_ = [f"2026-{i:02d}" for i in range(1, 13)]
    shown = thin_labels(texts_, [30.0] * 12, slot_pt=20)
    assert shown == ["", "2026-02", "", "2026-04", "", "2026-06", "", "2026-08", "",
                     "2026-10", "", "2026-12"]
    assert thin_labels(texts_, [10.0] * 12, slot_pt=20) == texts_


def test_german_labels_give_german_words_and_numbers():
    months = history([1180, 1210, None, 1390, 1400], ordered=1200)
    words = texts(category_chart(months, "#1f6feb", GERMAN))
    for word in ("gültige Baseline", "gezählte Geräte", "Nachlizenzierung", "kein Inventar",
                 "Mär 26", "Nov 25"):
        assert word in words
    assert any("." in label for label in tick_labels(category_chart(months, "#000", GERMAN),
                                                     "y"))
    assert not {"baseline in effect", "devices counted", "no inventory"} & set(words)


def test_the_same_history_gives_the_same_svg_and_leaves_matplotlib_as_it_was():
    salt = matplotlib.rcParams["svg.hashsalt"]
    first = category_chart(TWELVE, "#1f6feb", GERMAN)
    category_chart(history([5, None, 7]), "#c0392b")
    assert category_chart(TWELVE, "#1f6feb", GERMAN) == first
    assert first.startswith("<svg")
    assert 'width="453.6pt"' in first
    assert matplotlib.rcParams["svg.hashsalt"] == salt
