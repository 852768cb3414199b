"""`insights report`: the page as static files for a sprint review — index.html, a PNG and an
SVG chart and the JSON of each metric — computed once over one store."""

from __future__ import annotations

import json
from pathlib import Path

from gameplay_analytics.insights import core, page, plot
from gameplay_analytics.insights.stores import Store

__all__ = ["write_report"]


def write_report(store: Store, params: core.Params, out: Path) -> Path:
    """Write the report into `out` (created); returns the path of its index.html.

    Raises InsightsError for a store that refuses, OSError for a folder that cannot be
    written."""
    results = [core.compute(metric, store, params) for metric in page.PAGE_METRICS]
    out.mkdir(parents=True, exist_ok=True)
    charts = {}
    for result in results:
        for suffix in (".png", ".svg"):
            plot.plot_result(result, out / f"{result.metric}{suffix}")
        charts[result.metric] = f"{result.metric}.png"
        (out / f"{result.metric}.json").write_text(
            json.dumps(result.as_json(), ensure_ascii=False) + "\n", encoding="utf-8"
        )
    index = out / "index.html"
    index.write_text(
        page.render_page(results, params=params, charts=charts, live=False), encoding="utf-8"
    )
    return index
