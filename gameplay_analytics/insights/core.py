"""Compute a metric: render its definition for the store, run it, shape PROTOCOL.md §6 rows.

`compute` is the one entry point the CLI, the page and the report share. Shaping the raw rows
(rates, Wilson intervals, the funnel's steps as rows) is pure and lives in `shape`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gameplay_analytics.insights import definitions, estimators
from gameplay_analytics.insights.dialect import Dialect, render
from gameplay_analytics.insights.stores import InsightsError, Store

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "Params",
    "Result",
    "bind",
    "bound_sql",
    "compute",
    "render_sql",
    "shape",
    "sql_for",
    "sql_literals",
    "whole_store_sql",
]

DEFAULT_WINDOW_DAYS: Final = 7
"""The onboarding funnel's window after activation (the seed: 'within seven days')."""

_COUNTS: Final = frozenset(
    {"players", "retained", "sessions", "encounters", "wins", "losses", "flees", "deaths",
     "engagements", "events", "amount", "successes", "player_days",
     "common", "uncommon", "rare", "epic", "legendary"}
)  # fmt: skip
_DECIMALS: Final = 6
_PARAM: Final = re.compile(r"\$(\d+)")


@dataclasses.dataclass(frozen=True, slots=True)
class Params:
    """The arguments in force for one metric (echoed as `params` in the JSON output)."""

    store: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    by: tuple[str, ...] = ()
    window: int = DEFAULT_WINDOW_DAYS

    def __post_init__(self) -> None:
        unknown = [d for d in self.by if d not in definitions.DIMENSIONS]
        if unknown:
            raise InsightsError(
                f"unknown dimension {unknown[0]!r} (one of: {', '.join(definitions.DIMENSIONS)})"
            )
        if len(set(self.by)) != len(self.by):
            raise InsightsError("a dimension is repeated in --by")
        if self.window < 0:
            raise InsightsError(f"--window must be a whole number of days ≥ 0, not {self.window}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InsightsError(f"--from {self.date_from} is after --to {self.date_to}")

    def as_json(self, metric: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "store": self.store,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "by": list(self.by),
        }
        if metric == "funnel":
            out["window"] = self.window
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    metric: str
    params: dict[str, Any]
    rows: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "params": self.params, "rows": self.rows}


def sql_for(metric: str, store: Store, by: Sequence[str]) -> str:
    """The rendered SQL of `metric` for `store`'s dialect, grouped by the `by` slices."""
    return render_sql(metric, store.dialect, by)


def render_sql(metric: str, dialect: Dialect, by: Sequence[str]) -> str:
    """The rendered SQL of `metric` in `dialect` (the hot store's form for Postgres)."""
    definition = definitions.METRICS.get(metric)
    if definition is None:
        raise InsightsError(f"unknown metric {metric!r} (one of: {', '.join(definitions.METRICS)})")
    dims = "".join(f"pl.d_{d} AS dim_{d}, " for d in by)
    group = "".join(f", dim_{d}" for d in by)
    template = definition.template
    if definition.hot_template is not None and dialect is Dialect.POSTGRES:
        template = definition.hot_template
    return render(
        template,
        dialect,
        dims=dims,
        group=group,
        sinks=sql_literals(definitions.SINK_LOCATIONS),
    )


def whole_store_sql(metric: str, dialect: Dialect, *, window: int = DEFAULT_WINDOW_DAYS) -> str:
    """`metric` over the whole store, grouped by every slice, its parameters made constants:
    the form a view, a BI tool or another engine (Trino) runs without bind parameters."""
    values = {"from": "NULL", "to": "NULL", "window": str(int(window))}
    return bound_sql(metric, dialect, definitions.DIMENSIONS, values)


def bound_sql(metric: str, dialect: Dialect, by: Sequence[str], values: Mapping[str, str]) -> str:
    """`metric` grouped by the `by` slices, each positional parameter replaced by the SQL
    expression `values` gives for its name (`from`, `to`, `window`)."""
    sql = render_sql(metric, dialect, by)
    return bind(sql, definitions.METRICS[metric].params, values)


def bind(sql: str, names: Sequence[str], values: Mapping[str, str]) -> str:
    """`sql` with `$n` replaced by `values[names[n - 1]]` (SQL text, not bind parameters)."""
    return _PARAM.sub(lambda m: values[names[int(m.group(1)) - 1]], sql)


def compute(metric: str, store: Store, params: Params) -> Result:
    """Run `metric` on `store` and shape its rows; an empty range gives no rows."""
    sql = sql_for(metric, store, params.by)
    values = {"from": params.date_from, "to": params.date_to, "window": params.window}
    args = [values[name] for name in definitions.METRICS[metric].params]
    raw = store.fetch(sql, args)
    return Result(metric, params.as_json(metric), shape(metric, raw, params.by))


def shape(metric: str, raw: Sequence[dict[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """PROTOCOL.md §6 rows from the SQL's rows: the `by` slices first, then the measures."""
    rows: list[dict[str, Any]] = []
    for record in raw:
        dims = {d: record[f"dim_{d}"] for d in by}
        for measures in _MEASURES[metric](record):
            rows.append({**dims, **{k: _clean(k, v) for k, v in measures.items()}})
    return rows


def _funnel(r: dict[str, Any]) -> list[dict[str, Any]]:
    base = float(r["first_session"] or 0)
    out = []
    for step in definitions.FUNNEL_STEPS:
        players = float(r[step] or 0)
        low, high = estimators.wilson(players, base)
        rate = estimators.ratio(players, base)
        out.append(
            {"step": step, "players": players, "rate": rate, "rate_low": low, "rate_high": high}
        )
    return out


def _retention(r: dict[str, Any]) -> list[dict[str, Any]]:
    players, retained = float(r["players"]), float(r["retained"])
    low, high = estimators.wilson(retained, players)
    day = r["activation_day"]
    return [
        {
            "activation_day": day.isoformat() if isinstance(day, dt.date) else str(day),
            "day": int(r["day"]),
            "players": players,
            "retained": retained,
            "rate": estimators.ratio(retained, players),
            "rate_low": low,
            "rate_high": high,
        }
    ]


def _sessions(r: dict[str, Any]) -> list[dict[str, Any]]:
    sessions = float(r["sessions"])
    return [
        {
            "sessions": sessions,
            "players": float(r["players"]),
            "median_minutes": r["median_minutes"],
            "sessions_per_player_day": estimators.ratio(sessions, float(r["player_days"])),
            "total_minutes": r["total_minutes"],
            "player_days": float(r["player_days"]),
        }
    ]


def _combat(r: dict[str, Any]) -> list[dict[str, Any]]:
    encounters, wins = float(r["encounters"]), float(r["wins"])
    low, high = estimators.wilson(wins, encounters)
    return [
        {
            "tier": r["tier"],
            "encounters": encounters,
            "wins": wins,
            "losses": float(r["losses"]),
            "flees": float(r["flees"]),
            "win_rate": estimators.ratio(wins, encounters),
            "win_rate_low": low,
            "win_rate_high": high,
            "deaths": float(r["deaths"]),
            "engagements": float(r["engagements"]),
        }
    ]


def _xp(r: dict[str, Any]) -> list[dict[str, Any]]:
    hours, xp = float(r["hours"] or 0), float(r["xp"] or 0)
    low, high = estimators.normal_interval(xp, float(r["xp_variance"] or 0))
    return [
        {
            "players": float(r["players"]),
            "hours": hours,
            "xp": xp,
            "xp_per_hour": estimators.ratio(xp, hours),
            "xp_per_hour_low": estimators.ratio(low, hours),
            "xp_per_hour_high": estimators.ratio(high, hours),
        }
    ]


def _economy(r: dict[str, Any]) -> list[dict[str, Any]]:
    events = float(r["events"])
    craft = r["kind"] == "craft"
    row: dict[str, Any] = {
        "flow": r["flow"],
        "item": r["item"],
        "events": events,
        "amount": float(r["amount"] or 0),
        "kind": r["kind"],
        "success_rate": (
            estimators.ratio(float(r["successes"]), events)
            if craft and r["flow"] == "sink"
            else None
        ),
    }
    if r["kind"] == "loot":
        row.update({rarity: float(r[rarity]) for rarity in _RARITIES})
    return [row]


_RARITIES: Final = ("common", "uncommon", "rare", "epic", "legendary")
_MEASURES: Final = {
    "funnel": _funnel,
    "retention": _retention,
    "sessions": _sessions,
    "combat": _combat,
    "xp": _xp,
    "economy": _economy,
}


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, float):
        value = round(value, _DECIMALS)
        if key in _COUNTS and value.is_integer():
            return int(value)
    return value


def sql_literals(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)
