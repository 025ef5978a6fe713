"""Charts as inline SVG, drawn server-side with matplotlib: no JavaScript in any report."""
from __future__ import annotations

import io

from pipelines.reconcile import NO_DATA, TRUE_UP, CategoryMonth, to_cents


def category_chart(history: list[CategoryMonth], color: str) -> str:
    """Devices counted each month against the baseline in effect; true-ups marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "polyrecon",
                                "font.size": 8, "font.family": "DejaVu Sans"})
    labels = [str(m.month) for m in history]
    positions = list(range(len(history)))
    counted = [m.counted if m.status != NO_DATA else None for m in history]
    baseline = [float(to_cents(m.baseline)) for m in history]
    figure, axes = plt.subplots(figsize=(6.3, 1.9), dpi=100)
    try:
        axes.step(positions, baseline, where="mid", color="#888888", linewidth=1.2,
                  label="baseline in effect")
        axes.plot(positions, [c if c is not None else float("nan") for c in counted],
                  color=color, marker="o", markersize=3, linewidth=1.6, label="devices counted")
        ups = [i for i, m in enumerate(history) if m.status == TRUE_UP]
        if ups:
            axes.scatter(ups, [counted[i] for i in ups], s=60, marker="^", color="#c0392b",
                         zorder=3, label="true-up")
        gaps = [i for i, m in enumerate(history) if m.status == NO_DATA]
        for i in gaps:
            axes.axvspan(i - 0.4, i + 0.4, color="#f3d9a4", alpha=0.6, linewidth=0)
        axes.set_xticks(positions, labels)
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)
        axes.legend(loc="lower left", frameon=False, ncols=3, fontsize=7,
                    bbox_to_anchor=(0, 1.0))
        figure.subplots_adjust(left=0.08, right=0.99, bottom=0.14, top=0.84)  # not tight_layout: half the time
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]
