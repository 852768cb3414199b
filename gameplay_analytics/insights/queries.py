"""The analyses as SQL, for the Postgres hot store and the DuckDB view of the warm store.

Every analysis counts players from events sampled at rate 1.0 (session lifecycle and
`encounter_end`), or weights sampled events by `1 / sample_rate`, so sampling never biases a
figure. `analytics_player_id` changes with the monthly salt: analyses span one month at most.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["FUNNEL_STEPS", "Dialect", "Query", "combat", "funnel", "sample_rates", "xp_velocity"]


class Dialect(enum.Enum):
    POSTGRES = "postgres"
    DUCKDB = "duckdb"

    def prop(self, name: str) -> str:
        """A text prop of the `props` column (jsonb in Postgres, JSON text in Parquet)."""
        if self is Dialect.POSTGRES:
            return f"props->>'{name}'"
        return f"json_extract_string(props, '$.{name}')"

    def number(self, name: str) -> str:
        return f"CAST({self.prop(name)} AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class Query:
    title: str
    sql: str
    columns: tuple[str, ...]


# The onboarding funnel: first session → first combat (encounter) → first combat win.
FUNNEL_STEPS = ("first session", "first combat", "first combat win")


def funnel(dialect: Dialect) -> Query:
    outcome = dialect.prop("outcome")
    sql = f"""
WITH firsts AS (
    SELECT analytics_player_id,
           MIN(CASE WHEN event_name = 'session_start' THEN event_ts END) AS started,
           MIN(CASE WHEN event_name = 'encounter_end' THEN event_ts END) AS fought,
           MIN(CASE WHEN event_name = 'encounter_end' AND {outcome} = 'win'
                    THEN event_ts END) AS won
    FROM analytics_events
    GROUP BY analytics_player_id
)
SELECT COUNT(started) AS first_session,
       COUNT(CASE WHEN fought >= started THEN 1 END) AS first_combat,
       COUNT(CASE WHEN won >= started THEN 1 END) AS first_combat_win
FROM firsts
"""
    return Query("Onboarding funnel", sql, ("first_session", "first_combat", "first_combat_win"))


def sample_rates() -> Query:
    """Stored events and their mean sample rate per category; `estimated` reweights."""
    sql = """
SELECT category,
       COUNT(*) AS stored,
       AVG(sample_rate) AS mean_rate,
       SUM(1.0 / sample_rate) AS estimated
FROM analytics_events
WHERE sample_rate > 0
GROUP BY category
ORDER BY category
"""
    return Query("Sample rates per category", sql, ("category", "stored", "mean_rate", "estimated"))


def combat(dialect: Dialect) -> Query:
    """Encounter win rate by tier (encounter_end is never sampled)."""
    tier, outcome = dialect.prop("tier"), dialect.prop("outcome")
    sql = f"""
SELECT {tier} AS tier,
       COUNT(*) AS encounters,
       AVG(CASE WHEN {outcome} = 'win' THEN 1.0 ELSE 0.0 END) AS win_rate
FROM analytics_events
WHERE event_name = 'encounter_end'
GROUP BY 1
ORDER BY 1
"""
    return Query("Combat success by tier", sql, ("tier", "encounters", "win_rate"))


def xp_velocity(dialect: Dialect) -> Query:
    """Estimated XP per player-hour by character class, sampled XP reweighted."""
    amount, klass = dialect.number("amount"), dialect.prop("character_class")
    sql = f"""
WITH classes AS (
    SELECT analytics_player_id, MIN({klass}) AS character_class
    FROM analytics_events WHERE event_name = 'session_start' GROUP BY 1
), xp AS (
    SELECT analytics_player_id, SUM({amount} / sample_rate) AS xp,
           EXTRACT(EPOCH FROM MAX(event_ts) - MIN(event_ts)) / 3600.0 AS hours
    FROM analytics_events WHERE event_name = 'xp_gain' AND sample_rate > 0 GROUP BY 1
)
SELECT COALESCE(c.character_class, 'unknown') AS character_class,
       COUNT(*) AS players,
       SUM(xp.xp) / NULLIF(SUM(xp.hours), 0) AS xp_per_hour
FROM xp LEFT JOIN classes c USING (analytics_player_id)
GROUP BY 1
ORDER BY 1
"""
    return Query("XP velocity by class", sql, ("character_class", "players", "xp_per_hour"))
