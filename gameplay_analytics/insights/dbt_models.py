"""The SQL of the dbt project's models (analytics/dbt/models/), rendered, never restated.

Each model is Jinja-wrapped SQL that runs on the Postgres target (the hot store) and the
DuckDB target (the Parquet warm store): where the dialects differ (a JSON prop), the model
holds each target's rendering under `{% if target.type == ... %}`, Trino's (production, not
runnable here) transpiled from DuckDB's by sqlglot as analytics/trino/ is.

- staging: `stg_events` is the store's events with one typed column per prop of the event
  schema (`prop_<name>`, NULL on events that have no such prop); `stg_sessions` one row per
  `session_id` with its lifecycle timestamps.
- intermediate: `int_sessions` (the metrics' own sessions, `ctes._SESSIONS`, with their
  durations), `int_encounters` (engage_enemy to encounter_end) and `int_economy_flows`
  (the economy metric's own flows, `ctes._FLOWS`).
- marts: each is an insights metric (`definitions.METRICS`) rendered by `core.bound_sql`
  over every slice, per day where the mart is daily: the day's rows are the metric with
  `--from DAY --to DAY`, so a mart row equals the CLI's row for that day and slice.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

from gameplay_analytics.contract import registry
from gameplay_analytics.contract.semver import SemVer
from gameplay_analytics.insights import core, ctes, definitions, trino
from gameplay_analytics.insights.dialect import Dialect, render
from gameplay_analytics.runtime.storage.warm import WARM_SCHEMA

__all__ = ["MARTS", "Mart", "event_props", "intermediate_sql", "mart_sql", "staging_sql"]

SOURCE: Final = "hot"
"""The dbt source name of the hot store's tables (schema `public`)."""
WARM_FILES: Final = (
    'read_parquet(\'{{ env_var("GAMEPLAY_ANALYTICS_WAREHOUSE_ROOT") }}'
    "/gameplay/event_date=*/*.parquet', hive_partitioning = false, union_by_name = true)"
)
"""The warm store's layout (`{root}/gameplay/event_date=YYYY-MM-DD/data.parquet`) in DuckDB."""
EMPTY_DAY: Final = "1970-01-01"
"""The day a daily mart renders when the store has none (it yields no rows)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Mart:
    """A mart: the insights metric it renders, and whether it is one slice of rows per day."""

    metric: str
    daily: bool
    lookback_days: int = 1
    """Days before the newest built day that an incremental run recomputes (late events,
    and the funnel's window during which a cohort still moves)."""
    keys: tuple[str, ...] = ()
    """The metric's own row keys besides the day and the slices."""


MARTS: Final = {
    "onboarding_funnel": Mart("funnel", daily=True, lookback_days=core.DEFAULT_WINDOW_DAYS + 1),
    "retention": Mart("retention", daily=False, keys=("activation_day", "day")),
    "combat_daily": Mart("combat", daily=True, keys=("tier",)),
    "xp_velocity": Mart("xp", daily=True),
    "economy_daily": Mart("economy", daily=True, keys=("flow", "item")),
    "cohort_slices": Mart("sessions", daily=True),
}
"""Every mart by its model name. `retention` is grouped by activation day by definition,
so it is one table over the store rather than a day at a time."""


def event_props() -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Every prop of the newest working event schema: {name: (SQL type, events carrying it,
    its enum or ())}. A prop that is an integer on one event and a number on another is a
    number; an enum is kept only where every event carrying the prop gives the same one."""
    schemas = registry.working_schemas()
    newest = max(schemas, key=SemVer.parse)
    out: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for event, spec in sorted(schemas[newest]["definitions"].items()):
        for name, prop in sorted(spec.get("properties", {}).items()):
            kind = _SQL_TYPES.get(str(prop.get("type")), "VARCHAR")
            enum = tuple(str(v) for v in prop.get("enum", ()))
            if name in out:
                was, events, was_enum = out[name]
                kind = was if was == kind else "DOUBLE PRECISION"
                enum = was_enum if was_enum == enum else ()
                out[name] = (kind, (*events, event), enum)
            else:
                out[name] = (kind, (event,), enum)
    return out


_SQL_TYPES: Final = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
}


def _targets(postgres: str, duckdb: str, trino_sql: str) -> str:
    """The model's SQL per target: Postgres (hot store), Trino (production, over the warm
    store's Hive table) and otherwise DuckDB (the warm store's Parquet)."""
    branches = [("postgres", postgres), ("trino", trino_sql)]
    out = ""
    for kind, sql in branches:
        out += "{% " + ("if" if not out else "elif") + f" target.type == '{kind}' %}}\n"
        out += sql.rstrip("\n") + "\n"
    return out + "{% else %}\n" + duckdb.rstrip("\n") + "\n{% endif %}\n"


def _both(postgres: str, duckdb: str) -> str:
    """Postgres and DuckDB SQL, and Trino's transpiled from DuckDB's."""
    return _targets(postgres, duckdb, _trino(duckdb))


_JINJA: Final = re.compile(r"\{\{ [^}]* \}\}")
_DAY_LITERAL: Final = "{{ day }}"  # inside a string literal: sqlglot keeps it


def _trino(duckdb: str) -> str:
    """DuckDB SQL (with Jinja expressions) as Trino SQL: each Jinja expression is hidden
    behind an identifier while sqlglot transpiles, then put back."""
    saved: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        if match.group(0) == _DAY_LITERAL:
            return match.group(0)
        key = f"jinja_{len(saved)}_"
        saved[key] = match.group(0)
        return key

    lines = duckdb.splitlines()
    comments = [line for line in lines if line.startswith("--")]
    body = "\n".join(line for line in lines if not line.startswith("--"))
    out = trino.from_duckdb(_JINJA.sub(hide, body))
    for key, text in saved.items():
        out = out.replace(key, text)
    return "".join(f"{c}\n" for c in comments) + out + "\n"


def _refs(sql: str) -> str:
    """The store's tables as dbt relations: events through staging, profiles as a source."""
    sql = re.sub(r"\banalytics_events\b", "{{ ref('stg_events') }}", sql)
    return re.sub(
        r"\banalytics_player_profile\b",
        "{{ source('" + SOURCE + "', 'analytics_player_profile') }}",
        sql,
    )


def staging_sql(model: str) -> str:
    if model == "stg_events":
        return _stg_events()
    if model == "stg_sessions":
        return _STG_SESSIONS
    raise KeyError(model)


def _stg_events() -> str:
    def typed(dialect: Dialect) -> str:
        columns = [f"    {f.name}" for f in WARM_SCHEMA]
        for name, (kind, events, _) in event_props().items():
            value = dialect.prop(name)
            if kind != "VARCHAR":
                value = f"CAST({value} AS {kind})"
            listed = ", ".join(f"'{e}'" for e in events)
            columns.append(
                f"    CASE WHEN event_name IN ({listed}) THEN {value} END AS prop_{name}"
            )
        return ",\n".join(columns)

    source = "{{ source('" + SOURCE + "', 'analytics_events') }}"
    return (
        "-- The store's events, one typed column per prop of the event schema (prop_<name>).\n"
        + _targets(
            f"SELECT\n{typed(Dialect.POSTGRES)}\nFROM {source}\n",
            f"SELECT\n{typed(Dialect.DUCKDB)}\nFROM {WARM_FILES}\n",
            _trino(f"SELECT\n{typed(Dialect.DUCKDB)}\nFROM {source}\n"),
        )
    )


_STG_SESSIONS: Final = """\
-- One row per session_id: its player, lifecycle timestamps and client attributes.
SELECT session_id,
       MIN(analytics_player_id) AS player,
       MIN(event_ts) FILTER (WHERE event_name = 'session_start') AS started_at,
       MIN(event_ts) FILTER (WHERE event_name IN ('session_end', 'session_crash')) AS ended_at,
       MIN(prop_reason) FILTER (WHERE event_name IN ('session_end', 'session_crash'))
           AS end_reason,
       MIN(event_ts) AS first_event_at,
       MAX(event_ts) AS last_event_at,
       COUNT(*) AS events,
       MIN(NULLIF(build, '')) AS build,
       MIN(NULLIF(platform, '')) AS platform,
       MIN(NULLIF(region, '')) AS region
FROM {{ ref('stg_events') }}
WHERE sample_rate > 0 AND COALESCE(source, 'client') = 'client'
GROUP BY session_id
"""


def intermediate_sql(model: str) -> str:
    if model == "int_sessions":
        return _cte_model(
            (ctes._ALL_EVENTS, ctes._SESSIONS),
            "SELECT player, n AS session_number, start_day, seconds, seconds / 60.0 AS minutes\n"
            "FROM sessions\nWHERE start_day IS NOT NULL\n",
            "-- The metrics' sessions (insights/ctes.py _SESSIONS): a player's events in time\n"
            "-- order, each session_start opening the next session.\n",
        )
    if model == "int_economy_flows":
        return _cte_model(
            (ctes._ALL_EVENTS, ctes._IN_RANGE, ctes._FLOWS),
            "SELECT player, flow, kind, item, w AS weight, amount, rarity, ok AS success\n"
            "FROM flows\n",
            "-- The economy metric's flows (insights/ctes.py _FLOWS), whole store.\n",
        )
    if model == "int_encounters":
        return _both(_INT_ENCOUNTERS, _INT_ENCOUNTERS)
    raise KeyError(model)


def _cte_model(parts: tuple[str, ...], select: str, comment: str) -> str:
    template = ctes._with(*parts) + select
    values = {"from": "NULL", "to": "NULL"}

    def one(dialect: Dialect) -> str:
        sql = render(template, dialect, sinks=core.sql_literals(definitions.SINK_LOCATIONS))
        return _refs(core.bind(sql, ("from", "to"), values))

    return comment + _both(one(Dialect.POSTGRES), one(Dialect.DUCKDB))


_INT_ENCOUNTERS: Final = """\
-- Encounters from engage to end: within a session, the events after one encounter_end up to
-- and including the next. engaged_at is NULL when the engage_enemy was sampled out.
WITH fights AS (
    SELECT analytics_player_id AS player, session_id, event_name, event_ts, prop_tier,
           prop_outcome, prop_encounter_id,
           COALESCE(SUM(CASE WHEN event_name = 'encounter_end' THEN 1 ELSE 0 END) OVER (
               PARTITION BY analytics_player_id, session_id ORDER BY event_ts, seq
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS encounter_number
    FROM {{ ref('stg_events') }}
    WHERE event_name IN ('engage_enemy', 'death', 'encounter_end')
      AND sample_rate > 0 AND COALESCE(source, 'client') = 'client'
),
encounters AS (
    SELECT player, session_id, encounter_number,
           MIN(prop_encounter_id) FILTER (WHERE event_name = 'encounter_end') AS encounter_id,
           MIN(event_ts) FILTER (WHERE event_name = 'engage_enemy') AS engaged_at,
           MIN(event_ts) FILTER (WHERE event_name = 'encounter_end') AS ended_at,
           MIN(prop_tier) FILTER (WHERE event_name = 'encounter_end') AS tier,
           MIN(prop_outcome) FILTER (WHERE event_name = 'encounter_end') AS outcome,
           COUNT(*) FILTER (WHERE event_name = 'death') AS deaths_stored
    FROM fights
    GROUP BY player, session_id, encounter_number
    HAVING COUNT(*) FILTER (WHERE event_name = 'encounter_end') > 0
)
SELECT *, EXTRACT(EPOCH FROM ended_at) - EXTRACT(EPOCH FROM engaged_at) AS seconds
FROM encounters
"""


def mart_sql(model: str) -> str:
    mart = MARTS[model]
    estimator = definitions.METRICS[mart.metric].estimator
    head = f"-- insights metric '{mart.metric}' (insights/definitions.py). {estimator}\n"
    if not mart.daily:
        values = {"from": "NULL", "to": "NULL", "window": "{{ var('funnel_window') }}"}
        return head + _both(*(_metric(mart.metric, d, values) for d in Dialect))
    day = "CAST('{{ day }}' AS DATE)"
    values = {"from": day, "to": day, "window": "{{ var('funnel_window') }}"}
    body = _both(*(_metric(mart.metric, d, values) for d in Dialect))
    newest = f"COALESCE((SELECT MAX(day) FROM {{{{ this }}}}), DATE '{EMPTY_DAY}')"
    return (
        head + "{{ config(materialized='incremental', unique_key='day',"
        " incremental_strategy='delete+insert') }}\n"
        "{%- set days_sql -%}\n"
        "SELECT DISTINCT event_day FROM {{ ref('stg_events') }}\n"
        "{%- if is_incremental() %}\n"
        f"WHERE event_day >= {_days_before(newest, mart.lookback_days)}\n"
        "{%- endif %}\nORDER BY 1\n{%- endset -%}\n"
        "{%- set days = run_query(days_sql).columns[0].values() if execute else [] -%}\n"
        f"{{%- for day in (days or ['{EMPTY_DAY}']) %}}\n"
        "{% if not loop.first %}UNION ALL\n{% endif -%}\n"
        f"SELECT {day} AS day, m.* FROM (\n{body}) m\n"
        "{%- endfor %}\n"
    )


def _days_before(day: str, days: int) -> str:
    """`day` minus `days` in each target's SQL (Trino has no date - integer)."""
    return (
        f"{{% if target.type == 'trino' %}}date_add('day', -{days}, {day})"
        f"{{% else %}}{day} - {days}{{% endif %}}"
    )


def _metric(metric: str, dialect: Dialect, values: dict[str, str]) -> str:
    return _refs(core.bound_sql(metric, dialect, definitions.DIMENSIONS, values))


def key_expression(model: str) -> str:
    """A SQL expression unique per row of the mart (dbt's `unique` test runs on it)."""
    mart = MARTS[model]
    parts = (["day"] if mart.daily else []) + [f"dim_{d}" for d in definitions.DIMENSIONS]
    parts += list(mart.keys)
    return " || '|' || ".join(f"COALESCE(CAST({p} AS VARCHAR), '')" for p in parts)


def describe(model: str) -> dict[str, Any]:
    """The mart's schema.yml entry: description, row key and columns."""
    mart = MARTS[model]
    metric = definitions.METRICS[mart.metric]
    grain = "one day (the metric with --from DAY --to DAY)" if mart.daily else "the whole store"
    return {
        "name": model,
        "description": (
            f"Insights metric `{mart.metric}` rendered from gameplay_analytics/insights/"
            f"definitions.py over {grain}, grouped by every slice (dim_*). Counts are additive: "
            f"a rate is a ratio of sums, never a sum of rates. Estimator: {metric.estimator}"
        ),
    }
