"""The designer's page: every metric as a chart and a table, with slice pickers and a date
range — one HTML renderer for `insights serve` (live) and `insights report` (static files).

Pure: it takes computed `Result`s and chart references and returns HTML. Every table cell
carries its raw value in `data-value` (the number the CLI's JSON holds) next to the text a
person reads, so a browser test can check the page against the JSON.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gameplay_analytics.insights import definitions, render
from gameplay_analytics.insights.core import Params, Result

__all__ = ["PAGE_METRICS", "render_page"]

PAGE_METRICS: Final = ("funnel", "retention", "sessions", "combat", "xp", "economy")
_TITLES: Final = {
    "funnel": "Onboarding funnel",
    "retention": "Retention (D1, D7, D30)",
    "sessions": "Sessions",
    "combat": "Combat by tier",
    "xp": "XP velocity",
    "economy": "Economy: sources and sinks",
}
_STYLE: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
form { background: #f4f4f6; padding: 12px; border-radius: 6px; margin-bottom: 20px; }
form label { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 24px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th:first-child, td.text { text-align: left; }
section { margin-bottom: 32px; }
img, svg { max-width: 760px; height: auto; display: block; }
.estimator { color: #666; font-size: 12px; max-width: 760px; }
"""


def render_page(
    results: Sequence[Result],
    *,
    params: Params,
    charts: Mapping[str, str],
    live: bool,
    generated: dt.datetime | None = None,
) -> str:
    """The page. `charts` maps a metric to an `<img>` source (report) or inline SVG (serve)."""
    when = (generated or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>gameplay-analytics insights</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Gameplay insights</h1>",
        f"<p>{html.escape(params.store)} store · generated {when}</p>",
        _form(params, live=live),
    ]
    for result in results:
        parts.append(_section(result, charts.get(result.metric, "")))
    data = json.dumps([r.as_json() for r in results], ensure_ascii=False)
    parts.append(
        f"<script type='application/json' id='insights-data'>{html.escape(data, quote=False)}"
        "</script></body></html>"
    )
    return "\n".join(parts)


def _form(params: Params, *, live: bool) -> str:
    if not live:
        return (
            f"<p>range {params.date_from or '…'} to {params.date_to or '…'}"
            f"{' · by ' + ', '.join(params.by) if params.by else ''}"
            f" · funnel window {params.window} days</p>"
        )
    boxes = "".join(
        f"<label><input type='checkbox' name='by' value='{d}' id='by-{d}'"
        f"{' checked' if d in params.by else ''}> {d}</label>"
        for d in definitions.DIMENSIONS
    )
    return (
        "<form method='get' id='slices'>"
        f"<label>from <input type='date' name='from' value='{params.date_from or ''}'></label>"
        f"<label>to <input type='date' name='to' value='{params.date_to or ''}'></label>"
        f"<label>window <input type='number' name='window' min='0' value='{params.window}'>"
        "</label><br>slice by: "
        f"{boxes} <button type='submit' id='apply'>apply</button></form>"
    )


def _section(result: Result, chart: str) -> str:
    title = _TITLES.get(result.metric, result.metric)
    estimator = definitions.METRICS[result.metric].estimator
    body = [f"<section id='{result.metric}'><h2>{html.escape(title)}</h2>"]
    if chart.startswith("<svg") or chart.startswith("<?xml"):
        body.append(chart[chart.index("<svg") :])
    elif chart:
        body.append(f"<img src='{html.escape(chart)}' alt='{html.escape(title)} chart'>")
    body.append(_table(result))
    body.append(f"<p class='estimator'>Estimator: {html.escape(estimator)}</p></section>")
    return "".join(body)


def _table(result: Result) -> str:
    if not result.rows:
        return f"<p class='empty' data-metric='{result.metric}'>no rows</p>"
    names = render.columns(result.rows)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for row in result.rows:
        cells = []
        for name in names:
            if name not in row:  # a measure other rows of the metric carry
                cells.append("<td></td>")
                continue
            value = row[name]
            text = _text(value)
            kind = "text" if isinstance(value, str) else "num"
            cells.append(
                f"<td class='{kind}' data-key='{html.escape(name)}' "
                f"data-value='{html.escape(json.dumps(value))}'>{html.escape(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table data-metric='{result.metric}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return (
            f"{value:,.3f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{value:,.0f}"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
