"""One chart per metric result (PNG or SVG by the file's suffix), for `--plot` and the report.

Rows are grouped by their slice (`--by` values) into one bar series each; the bar per row is
the metric's headline measure, with its interval as an error bar where it has one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Final

from gameplay_analytics.insights.core import Result

__all__ = ["HEADLINE", "plot_result", "svg_of"]

HEADLINE: Final = {
    # metric: (x label key, y measure, low, high, y axis label)
    "funnel": ("step", "rate", "rate_low", "rate_high", "share of activated players"),
    "retention": ("day", "rate", "rate_low", "rate_high", "retained share"),
    "sessions": (None, "median_minutes", None, None, "median session (min)"),
    "combat": ("tier", "win_rate", "win_rate_low", "win_rate_high", "win rate"),
    "xp": (None, "xp_per_hour", None, None, "XP per played hour"),
    "economy": ("item", "amount", None, None, "estimated amount"),
}


def plot_result(result: Result, path: Path) -> None:
    """Write the chart of `result` to `path` (the suffix picks PNG or SVG)."""
    _draw(result, path)


def svg_of(result: Result) -> str:
    """The chart of `result` as SVG text, to inline in a page."""
    buffer = io.BytesIO()
    _draw(result, buffer, fmt="svg")
    return buffer.getvalue().decode("utf-8")


def _draw(result: Result, target: Path | io.BytesIO, *, fmt: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key, y_key, low_key, high_key, y_label = HEADLINE[result.metric]
    by = list(result.params.get("by") or [])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        series: dict[str, list[dict[str, Any]]] = {}
        for row in result.rows:
            if result.metric == "retention" and row.get("players") == 0:
                continue
            label = " / ".join(str(row[d]) for d in by) or result.metric
            if result.metric == "economy":
                label = f"{label} {row['flow']}".strip()
            series.setdefault(label, []).append(row)
        width = 0.8 / max(1, len(series))
        ticks: list[str] = []
        for index, (label, rows) in enumerate(series.items()):
            if result.metric == "retention":
                rows = _pool_retention(rows)
            xs_labels = [str(r[x_key]) if x_key else "all" for r in rows]
            for name in xs_labels:
                if name not in ticks:
                    ticks.append(name)
            xs = [ticks.index(name) + index * width for name in xs_labels]
            ys = [float(r.get(y_key) or 0.0) for r in rows]
            errors = None
            if low_key and high_key:
                pairs = list(zip(ys, rows, strict=True))
                errors = [
                    [max(0.0, y - float(r.get(low_key) or y)) for y, r in pairs],
                    [max(0.0, float(r.get(high_key) or y) - y) for y, r in pairs],
                ]
            ax.bar(xs, ys, width=width, label=label, yerr=errors, capsize=3)
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(ticks))], ticks)
        ax.set_ylabel(y_label)
        ax.set_title(result.metric)
        if len(series) > 1:
            ax.legend(fontsize="small")
        if not result.rows:
            ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        fig.savefig(target, format=fmt)
    finally:
        plt.close(fig)


def _pool_retention(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per day across activation days: retained / players, pooled."""
    pooled: dict[int, list[float]] = {}
    for row in rows:
        sums = pooled.setdefault(int(row["day"]), [0.0, 0.0])
        sums[0] += float(row["retained"])
        sums[1] += float(row["players"])
    return [
        {"day": day, "rate": retained / players if players else 0.0}
        for day, (retained, players) in sorted(pooled.items())
    ]
