"""The daily summary for the roadmap review: the funnel, D1/D7 retention, combat win rates and
XP velocity of one day, each beside the day before and the change.

The figures are the insights metrics (`core.compute`, the definitions the dbt marts render
too), so the summary is the same with or without dbt. `collect` runs them for a day (I/O);
`summarise` and `markdown` are pure.

- funnel: the players activated on the day and their step rates (window `--window` days; a
  cohort's later steps still grow for `window` days after it, so the newest day reads low);
- retention D1 / D7 measured on the day: the cohort activated 1 / 7 days before;
- combat: win rate per tier and over all tiers (wins / encounters of the day);
- XP velocity: XP per played hour of the day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from gameplay_analytics.insights import core, definitions
from gameplay_analytics.insights.stores import Store

__all__ = ["collect", "figures", "markdown", "summarise"]

RETENTION_SHOWN: Final = (1, 7)
Figures = dict[str, dict[str, float | None]]
"""{section: {figure: value}} of one day."""


def collect(store: Store, day: dt.date, window: int) -> dict[str, Figures]:
    """The figures of `day` and of the day before, from `store`."""

    def run(metric: str, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        params = core.Params(store=store.name, date_from=first, date_to=last, window=window)
        return core.compute(metric, store, params).rows

    before = day - dt.timedelta(days=1)
    return {"today": figures(run, day), "yesterday": figures(run, before)}


def figures(run: Callable[[str, dt.date, dt.date], list[dict[str, Any]]], day: dt.date) -> Figures:
    """The summary's figures of `day`; `run(metric, first, last)` gives the metric's rows."""
    funnel: dict[str, float | None] = {}
    for row in run("funnel", day, day):
        funnel["activated" if row["step"] == "first_session" else row["step"]] = (
            row["players"] if row["step"] == "first_session" else row["rate"]
        )
    funnel.setdefault("activated", 0)
    for step in definitions.FUNNEL_STEPS[1:]:
        funnel.setdefault(step, None)

    retention: dict[str, float | None] = {}
    oldest = day - dt.timedelta(days=max(RETENTION_SHOWN))
    rows = run("retention", oldest, day - dt.timedelta(days=min(RETENTION_SHOWN)))
    for n in RETENTION_SHOWN:
        cohort = (day - dt.timedelta(days=n)).isoformat()
        found = [r for r in rows if r["day"] == n and r["activation_day"] == cohort]
        retention[f"d{n}"] = found[0]["rate"] if found else None

    combat: dict[str, float | None] = {}
    encounters = wins = 0.0
    for row in run("combat", day, day):
        combat[f"win_rate_{row['tier']}"] = row["win_rate"]
        encounters, wins = encounters + row["encounters"], wins + row["wins"]
    combat["win_rate"] = wins / encounters if encounters else None
    combat["encounters"] = encounters

    xp_rows = run("xp", day, day)
    xp = {"xp_per_hour": xp_rows[0]["xp_per_hour"] if xp_rows else None}
    return {"funnel": funnel, "retention": retention, "combat": combat, "xp_velocity": xp}


def summarise(
    day: dt.date, today: Figures, yesterday: Figures, *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON summary: each figure with its value, the day before's and the change."""
    sections: dict[str, Any] = {}
    for section, values in today.items():
        before = yesterday.get(section, {})
        names = list(values) + [k for k in before if k not in values]
        sections[section] = {
            name: {
                "value": _round(values.get(name)),
                "previous": _round(before.get(name)),
                "change": _change(values.get(name), before.get(name)),
            }
            for name in names
        }
    return {
        "day": day.isoformat(),
        "previous_day": (day - dt.timedelta(days=1)).isoformat(),
        **(extra or {}),
        "figures": sections,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _change(value: float | None, before: float | None) -> float | None:
    if value is None or before is None:
        return None
    return round(float(value) - float(before), 6)


_NOT_RATES: Final = frozenset({"activated", "encounters", "xp_per_hour"})


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown for the roadmap review doc: a table per section; rates in %,
    their change in percentage points."""
    lines = [
        f"# Daily insights — {summary['day']}",
        "",
        f"Compared with {summary['previous_day']}. Store: {summary.get('store', '?')}; "
        f"funnel window {summary.get('window', '?')} days.",
    ]
    dbt = summary.get("dbt")
    if dbt:
        lines.append(f"dbt build: {dbt.get('status', '?')}" + _counts(dbt))
    for section, rows in summary["figures"].items():
        lines += ["", f"## {section.replace('_', ' ').capitalize()}", ""]
        lines += ["| figure | day | day before | change |", "| --- | ---: | ---: | ---: |"]
        for name, f in rows.items():
            count = name in _NOT_RATES
            lines.append(
                f"| {name} | {_fmt(f['value'], count)} | {_fmt(f['previous'], count)} "
                f"| {_fmt(f['change'], count, signed=True)} |"
            )
    return "\n".join(lines) + "\n"


def _counts(dbt: dict[str, Any]) -> str:
    counts = dbt.get("counts") or {}
    return (" (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")") if counts else ""


def _fmt(value: float | None, count: bool, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    sign = "+" if signed else ""
    if count:
        return f"{value:{sign},.0f}" if float(value).is_integer() else f"{value:{sign},.1f}"
    return f"{value * 100:{sign}.1f} pp" if signed else f"{value * 100:.1f} %"
