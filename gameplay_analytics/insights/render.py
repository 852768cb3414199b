"""A metric's result as an aligned table, CSV or the JSON of PROTOCOL.md §6.

Tables show rates as percentages with their interval (`62.5% [48.1–75.0]`), counts without
trailing zeros; CSV and JSON carry the raw values.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Final

from gameplay_analytics.insights.core import Result

__all__ = ["FORMATS", "columns", "render_result", "rows_as_table"]

FORMATS: Final = ("table", "csv", "json")
# A rate column and the interval columns the table folds into it.
_INTERVALS: Final = {
    "rate": ("rate_low", "rate_high"),
    "win_rate": ("win_rate_low", "win_rate_high"),
    "xp_per_hour": ("xp_per_hour_low", "xp_per_hour_high"),
}
_PERCENT: Final = frozenset({"rate", "win_rate"})


def render_result(result: Result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), ensure_ascii=False) + "\n"
    if fmt == "csv":
        return rows_as_csv(result.rows)
    title = f"{result.metric} ({_describe(result.params)})"
    if not result.rows:
        return f"{title}\n(no rows)\n"
    return f"{title}\n{rows_as_table(result.rows)}"


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in first-seen order (rows of one metric may add a few)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def rows_as_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def rows_as_table(rows: Sequence[dict[str, Any]]) -> str:
    folded = {low for pair in _INTERVALS.values() for low in pair}
    names = [c for c in columns(rows) if c not in folded]
    cells = [[_cell(name, row) for name in names] for row in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    numeric = [all(_is_number(row.get(n)) for row in rows) for n in names]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    body = [line(names), line(["-" * w for w in widths])]
    body += [line(c) for c in cells]
    return "\n".join(body) + "\n"


def _cell(name: str, row: dict[str, Any]) -> str:
    value = row.get(name)
    if value is None:
        return "-"
    if name in _INTERVALS and isinstance(value, int | float):
        low, high = (row.get(k) for k in _INTERVALS[name])
        scale, unit = (100, "%") if name in _PERCENT else (1, "")
        text = f"{value * scale:,.1f}{unit}"
        if isinstance(low, int | float) and isinstance(high, int | float):
            text += f" [{low * scale:,.1f}–{high * scale:,.1f}]"
        return text
    if isinstance(value, float):
        return f"{value:,.2f}" if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _describe(params: dict[str, Any]) -> str:
    parts = [f"{params['store']} store"]
    if params.get("from") or params.get("to"):
        parts.append(f"{params.get('from') or '…'} to {params.get('to') or '…'}")
    if params.get("by"):
        parts.append("by " + ",".join(params["by"]))
    if "window" in params:
        parts.append(f"window {params['window']} d")
    return ", ".join(parts)
