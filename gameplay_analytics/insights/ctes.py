"""The shared building blocks of the metrics' SQL (`definitions`): the common table
expressions every metric starts from, in both dialects (`{p[...]}`/`{n[...]}` placeholders).

Private to `insights`: a metric is defined in `definitions`, never here.
"""

from __future__ import annotations

from typing import Final

UNKNOWN: Final = "unknown"
"""The slice value of a player attribute the store does not know."""

# -- shared building blocks ------------------------------------------------------------------

_ALL_EVENTS = """\
all_events AS (
    SELECT analytics_player_id AS player, event_name, category, event_ts, event_day, seq,
           sample_rate, props, NULLIF(region, '') AS region, NULLIF(platform, '') AS platform,
           NULLIF(build, '') AS build
    FROM analytics_events
    WHERE sample_rate > 0 AND coalesce(source, 'client') = 'client'
)"""
# The metrics are the players' clients' events; a game server's own (`source = server`,
# ServerEmitter) would count the same encounters twice. They serve `insights parity`.

_IN_RANGE = """\
ev AS (
    SELECT * FROM all_events
    WHERE ($1::date IS NULL OR event_day >= $1::date)
      AND ($2::date IS NULL OR event_day <= $2::date)
)"""


# PLAYSTYLE_RULE over the activity counts fights, explores, crafts, socials (the events' mix
# here, the onboarding profile's counters in the hot store's funnel and retention).
_PLAYSTYLE = """CASE WHEN GREATEST(fights, explores, crafts, socials) <= 0 THEN 'idle'
                WHEN fights = GREATEST(fights, explores, crafts, socials) THEN 'fighter'
                WHEN explores = GREATEST(fights, explores, crafts, socials) THEN 'explorer'
                WHEN crafts = GREATEST(fights, explores, crafts, socials) THEN 'crafter'
                ELSE 'socialiser' END"""


def _first(column: str) -> str:
    # The value on the player's first session_start that carries one.
    return (
        f"COALESCE((array_agg({column} ORDER BY event_ts) FILTER (WHERE "
        f"event_name = 'session_start' AND {column} IS NOT NULL))[1], '{UNKNOWN}')"
    )


_PLAYERS = f"""\
mix AS (
    SELECT player,
           MIN(event_ts) FILTER (WHERE event_name = 'session_start') AS activated_at,
           MIN(event_day) FILTER (WHERE event_name = 'session_start') AS activation_day,
           {_first("NULLIF({p[character_class]}, '')")} AS d_class,
           {_first("region")} AS d_region,
           {_first("platform")} AS d_platform,
           {_first("build")} AS d_build,
           COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'encounter_end'), 0)
               AS fights,
           COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'xp_gain'
               AND COALESCE({{p[source]}}, '') <> 'combat'), 0) AS explores,
           COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'craft_result'), 0)
               AS crafts,
           COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE category = 'social'), 0) AS socials
    FROM all_events
    GROUP BY player
),
players AS (
    SELECT player, activated_at, activation_day, d_class, d_region, d_platform, d_build,
           {_PLAYSTYLE} AS d_playstyle
    FROM mix
)"""

# Sessions from the events themselves, so hot and warm stores agree: a player's events in
# time order, each session_start opening the next session; it ends at its first session_end
# or session_crash, else at its last event (PROTOCOL.md §6 session time).
_SESSIONS = """\
numbered AS (
    SELECT player, event_name, event_ts, event_day,
           SUM(CASE WHEN event_name = 'session_start' THEN 1 ELSE 0 END) OVER (
               PARTITION BY player ORDER BY event_ts, seq
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n
    FROM all_events
),
sessions AS (
    SELECT player, n,
           MIN(event_day) FILTER (WHERE event_name = 'session_start') AS start_day,
           EXTRACT(EPOCH FROM COALESCE(
               MIN(event_ts) FILTER (WHERE event_name IN ('session_end', 'session_crash')),
               MAX(event_ts)))
           - EXTRACT(EPOCH FROM MIN(event_ts) FILTER (WHERE event_name = 'session_start'))
               AS seconds
    FROM numbered
    WHERE n > 0
    GROUP BY player, n
),
sessions_in_range AS (
    SELECT * FROM sessions
    WHERE ($1::date IS NULL OR start_day >= $1::date)
      AND ($2::date IS NULL OR start_day <= $2::date)
)"""

_ACTIVATED = """\
activated AS (
    SELECT * FROM players
    WHERE activation_day IS NOT NULL
      AND ($1::date IS NULL OR activation_day >= $1::date)
      AND ($2::date IS NULL OR activation_day <= $2::date)
)"""

# The onboarding profile (hot store only; runtime/storage/profile.py): one row per player,
# keyed across salt months, never exported.
_PROFILES = f"""\
activated AS (
    SELECT profile_key AS player, first_session_at AS activated_at, activation_day,
           COALESCE(NULLIF(character_class, ''), '{UNKNOWN}') AS d_class,
           COALESCE(NULLIF(region, ''), '{UNKNOWN}') AS d_region,
           COALESCE(NULLIF(platform, ''), '{UNKNOWN}') AS d_platform,
           COALESCE(NULLIF(build, ''), '{UNKNOWN}') AS d_build,
           {_PLAYSTYLE} AS d_playstyle,
           (first_combat_at AT TIME ZONE 'UTC')::date - activation_day AS combat_day,
           first_combat_rate,
           (first_certain_combat_at AT TIME ZONE 'UTC')::date - activation_day AS certain_day,
           (first_win_at AT TIME ZONE 'UTC')::date - activation_day AS win_day,
           active_days
    FROM analytics_player_profile
    WHERE activation_day IS NOT NULL
      AND ($1::date IS NULL OR activation_day >= $1::date)
      AND ($2::date IS NULL OR activation_day <= $2::date)
)"""

# Every economy flow of the range (`ev`), one row per source or sink event with its weight;
# `{sinks}` is `definitions.SINK_LOCATIONS` as SQL literals (the economy metric and the dbt
# intermediate `int_economy_flows` read it).
_FLOWS = """\
flows AS (
    SELECT player, 'source' AS flow, 'loot' AS kind, {p[item_id]} AS item,
           1.0 / sample_rate AS w, 1.0 AS amount, {p[rarity]} AS rarity, 0 AS ok
    FROM ev WHERE event_name = 'loot_drop'
    UNION ALL
    SELECT player, 'source', 'currency', 'xp', 1.0 / sample_rate, {n[amount]}, NULL, 0
    FROM ev WHERE event_name = 'xp_gain'
    UNION ALL
    SELECT player, 'source', 'craft', {p[recipe_id]}, 1.0 / sample_rate, 1.0, NULL, 1
    FROM ev WHERE event_name = 'craft_result' AND {p[success]} = 'true'
    UNION ALL
    SELECT player, 'sink', 'craft', {p[recipe_id]}, 1.0 / sample_rate, 1.0, NULL,
           CASE WHEN {p[success]} = 'true' THEN 1 ELSE 0 END
    FROM ev WHERE event_name = 'craft_result'
    UNION ALL
    SELECT player, 'sink', 'item', {p[item_id]}, 1.0 / sample_rate, 1.0, NULL, 0
    FROM ev WHERE event_name = 'inventory_move' AND {p[to]} IN ({sinks})
)"""

# `{dims}` becomes e.g. `pl.d_class AS dim_class, ` and `{group}` `, dim_class`.
_GROUP = "'all' AS _all, {dims}"


def _with(*ctes: str) -> str:
    return "WITH " + ",\n".join(ctes) + "\n"
