"""Every metric a designer reads, defined once as SQL templates (PROTOCOL.md §6).

The single owner of each metric: the CLI, the page, the dbt marts (`dbt_models`), the BI
views and Trino render these templates. They run unchanged on the hot store (Postgres) and on
the warm store (DuckDB over Parquet), `{p[...]}`/`{n[...]}` being the only dialect-specific
parts (see `dialect.render`). Parameters are positional: `$1` from-day, `$2` to-day (both inclusive,
NULL for open), `$3` the funnel window in days. Each template states its estimator; the
names are those of `estimators`.

Player attributes (the `--by` slices) come from a player's whole history in the store:
class, region, platform and build from the first `session_start` that carries one, and the
playstyle from the event mix (`PLAYSTYLE_RULE`). A player is an `analytics_player_id`, which
changes with the monthly salt: on the hot store, funnel and retention read the onboarding
profile instead (`hot_template`), which follows a player across months.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from gameplay_analytics.insights.ctes import (
    _ACTIVATED,
    _ALL_EVENTS,
    _FLOWS,
    _GROUP,
    _IN_RANGE,
    _PLAYERS,
    _PROFILES,
    _SESSIONS,
    _with,
)

__all__ = [
    "DIMENSIONS",
    "FUNNEL_STEPS",
    "METRICS",
    "PLAYSTYLES",
    "PLAYSTYLE_RULE",
    "RETENTION_DAYS",
    "SAMPLE_RATES_SQL",
    "SINK_LOCATIONS",
    "MetricSQL",
]

DIMENSIONS: Final = ("class", "region", "platform", "build", "playstyle")
"""The `--by` slices, in the order rows carry them."""

FUNNEL_STEPS: Final = ("first_session", "first_combat", "first_combat_win")
RETENTION_DAYS: Final = (1, 7, 30)

PLAYSTYLES: Final = ("fighter", "explorer", "crafter", "socialiser", "idle")
PLAYSTYLE_RULE: Final = """\
A player's playstyle is the activity with the most estimated actions (each stored event
weighted 1/sample_rate) over their history in the store:
  fighter    - encounters finished (encounter_end)
  explorer   - XP gained from anything but combat (xp_gain whose source is not 'combat')
  crafter    - crafting attempts (craft_result)
  socialiser - social events (party_create, party_join, emote_played, friend_invite,
               chat_message)
Ties go to the earlier line; a player with none of these is 'idle'."""

SINK_LOCATIONS: Final = ("destroyed", "discarded", "sold", "trash", "vendor")
"""`inventory_move.to` values that take an item out of the economy (a sink)."""


SAMPLE_RATES_SQL: Final = """\
SELECT category, COUNT(*) AS stored, AVG(sample_rate) AS mean_rate,
       SUM(1.0 / sample_rate) AS estimated
FROM analytics_events
WHERE sample_rate > 0
GROUP BY category
ORDER BY category
"""
"""Stored events per category, their mean sample rate and the weighted estimate (both
dialects): how much sampling thinned each category."""


@dataclasses.dataclass(frozen=True, slots=True)
class MetricSQL:
    """One metric: its SQL template, the positional parameters it takes, its estimator."""

    name: str
    template: str
    params: tuple[str, ...]
    estimator: str
    hot_template: str | None = None
    """The hot store's form when it differs: funnel and retention read the onboarding
    profile there, which carries a player across salt months (the warm store has none)."""


# -- the metrics -------------------------------------------------------------------------------

FUNNEL = MetricSQL(
    name="funnel",
    params=("from", "to", "window"),
    estimator=(
        "players activated in the range (first session_start; rate 1.0, exact); a later step "
        "counts a player once, weighted 1/max(sample_rate) of the step's stored events within "
        "the window (day of event - activation day <= window, UTC days): the cohort hash "
        "makes that the probability the player is seen at all. A win (encounter_end, always "
        "kept) proves combat, so a player with a win counts 1.0 at first_combat too: the steps "
        "nest, no step exceeds the one before. rate = step / first_session, Wilson 95 % "
        "interval."
    ),
    template=_with(_ALL_EVENTS, _PLAYERS, _ACTIVATED)
    + """\
, reached AS (
    SELECT a.player,
           CASE WHEN COUNT(*) FILTER (WHERE e.event_name = 'encounter_end'
                                      AND {p[outcome]} = 'win') > 0 THEN 1.0
                ELSE 1.0 / MAX(e.sample_rate) FILTER (WHERE e.event_name = 'engage_enemy')
           END AS first_combat,
           1.0 / MAX(e.sample_rate) FILTER (WHERE e.event_name = 'encounter_end'
               AND {p[outcome]} = 'win') AS first_combat_win
    FROM activated a
    LEFT JOIN all_events e
      ON e.player = a.player AND e.event_ts >= a.activated_at
     AND e.event_day - a.activation_day <= $3
    GROUP BY a.player
)
SELECT """
    + _GROUP
    + """
       COUNT(*) AS first_session,
       COALESCE(SUM(r.first_combat), 0) AS first_combat,
       COALESCE(SUM(r.first_combat_win), 0) AS first_combat_win
FROM reached r JOIN activated pl ON pl.player = r.player
GROUP BY _all{group}
ORDER BY _all{group}
""",
)

FUNNEL = dataclasses.replace(
    FUNNEL,
    hot_template=_with(_PROFILES)
    + """\
SELECT """
    + _GROUP
    + """
       COUNT(*) AS first_session,
       COALESCE(SUM(CASE WHEN pl.certain_day <= $3 OR pl.win_day <= $3 THEN 1.0
                         WHEN pl.combat_day <= $3 THEN 1.0 / pl.first_combat_rate END), 0)
           AS first_combat,
       COALESCE(SUM(CASE WHEN pl.win_day <= $3 THEN 1.0 END), 0) AS first_combat_win
FROM activated pl
GROUP BY _all{group}
ORDER BY _all{group}
""",
)

RETENTION = MetricSQL(
    name="retention",
    params=("from", "to"),
    estimator=(
        "players activated on each day (exact); retained on day N: an activated player with "
        "any stored event on activation day + N (UTC), weighted 1/max(sample_rate) of that "
        "day's events (session lifecycle is never sampled, so in practice exact). "
        "rate = retained / players, Wilson 95 % interval."
    ),
    template=_with(_ALL_EVENTS, _PLAYERS, _ACTIVATED)
    + """\
, per_day AS (
    SELECT a.player, d.dn, 1.0 / MAX(e.sample_rate) AS w
    FROM activated a
    CROSS JOIN (VALUES (1), (7), (30)) AS d(dn)
    LEFT JOIN all_events e ON e.player = a.player AND e.event_day = a.activation_day + d.dn
    GROUP BY a.player, d.dn
)
SELECT """
    + _GROUP
    + """
       pl.activation_day AS activation_day, r.dn AS day,
       COUNT(*) AS players, COALESCE(SUM(r.w), 0) AS retained
FROM per_day r JOIN activated pl ON pl.player = r.player
GROUP BY _all{group}, pl.activation_day, r.dn
ORDER BY _all{group}, pl.activation_day, r.dn
""",
)

RETENTION = dataclasses.replace(
    RETENTION,
    hot_template=_with(_PROFILES)
    + """\
SELECT """
    + _GROUP
    + """
       pl.activation_day AS activation_day, d.dn AS day, COUNT(*) AS players,
       SUM(CASE WHEN pl.activation_day + d.dn = ANY(pl.active_days) THEN 1 ELSE 0 END)
           AS retained
FROM activated pl CROSS JOIN (VALUES (1), (7), (30)) AS d(dn)
GROUP BY _all{group}, pl.activation_day, d.dn
ORDER BY _all{group}, pl.activation_day, d.dn
""",
)

SESSIONS = MetricSQL(
    name="sessions",
    params=("from", "to"),
    estimator=(
        "sessions that started in the range (session_start is never sampled: exact); length "
        "from session_start to session_end or session_crash by event time, else to the "
        "session's last stored event; sessions_per_player_day = sessions / distinct "
        "(player, start day)."
    ),
    template=_with(_ALL_EVENTS, _PLAYERS, _SESSIONS)
    + """\
SELECT """
    + _GROUP
    + """
       COUNT(*) AS sessions, COUNT(DISTINCT s.player) AS players,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds / 60.0) AS median_minutes,
       SUM(s.seconds) / 60.0 AS total_minutes,
       COUNT(DISTINCT s.player || '/' || CAST(s.start_day AS VARCHAR)) AS player_days
FROM sessions_in_range s JOIN players pl ON pl.player = s.player
GROUP BY _all{group}
ORDER BY _all{group}
""",
)

COMBAT = MetricSQL(
    name="combat",
    params=("from", "to"),
    estimator=(
        "weighted totals (1/sample_rate) of encounter_end by outcome (never sampled: exact), "
        "death and engage_enemy (sampled below elite); win_rate = wins / encounters, "
        "Wilson 95 % interval."
    ),
    template=_with(_ALL_EVENTS, _IN_RANGE, _PLAYERS)
    + """\
SELECT """
    + _GROUP
    + """
       COALESCE({p[tier]}, 'unknown') AS tier,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'encounter_end'), 0)
           AS encounters,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'encounter_end'
           AND {p[outcome]} = 'win'), 0) AS wins,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'encounter_end'
           AND {p[outcome]} = 'loss'), 0) AS losses,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'encounter_end'
           AND {p[outcome]} = 'flee'), 0) AS flees,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'death'), 0) AS deaths,
       COALESCE(SUM(1.0 / sample_rate) FILTER (WHERE event_name = 'engage_enemy'), 0)
           AS engagements
FROM ev JOIN players pl ON pl.player = ev.player
WHERE event_name IN ('encounter_end', 'death', 'engage_enemy')
GROUP BY _all{group}, COALESCE({p[tier]}, 'unknown')
ORDER BY _all{group}, tier
""",
)

XP = MetricSQL(
    name="xp",
    params=("from", "to"),
    estimator=(
        "ratio of two unbiased totals over the same players: XP weighted 1/sample_rate (the "
        "XP cohort is sampled per player) over the play time of the players who played in "
        "the range (sessions are never sampled, so hours are exact). Not the XP of the "
        "sampled players over their own hours: a sampled player who earned no XP leaves no "
        "trace, so that ratio would leave their hours out and run high; and never weighted "
        "XP over the hours of the sampled players only (the old 3.3x error). At rate 1.0 all "
        "three agree. Interval: XP's Horvitz-Thompson variance over players sampled with "
        "probability r, sum((1 - r) * (xp / r)^2), as a normal 95 % interval over the hours."
    ),
    template=_with(_ALL_EVENTS, _IN_RANGE, _PLAYERS, _SESSIONS)
    + """\
, hours AS (
    SELECT player, SUM(seconds) / 3600.0 AS hours FROM sessions_in_range GROUP BY player
),
earned AS (
    SELECT player, SUM({n[amount]} / sample_rate) AS xp, MAX(sample_rate) AS rate
    FROM ev WHERE event_name = 'xp_gain' GROUP BY player
)
SELECT """
    + _GROUP
    + """
       COUNT(*) AS players, SUM(h.hours) AS hours, COALESCE(SUM(x.xp), 0) AS xp,
       COALESCE(SUM((1.0 - x.rate) * x.xp * x.xp), 0) AS xp_variance
FROM hours h LEFT JOIN earned x ON x.player = h.player JOIN players pl ON pl.player = h.player
GROUP BY _all{group}
ORDER BY _all{group}
""",
)

ECONOMY = MetricSQL(
    name="economy",
    params=("from", "to"),
    estimator=(
        "weighted totals (1/sample_rate). Sources: loot_drop per item (amount 1 each, with "
        "its rarity mix), xp_gain as currency 'xp' (amount = XP), a successful craft_result "
        "per recipe. Sinks: every craft_result attempt per recipe (its inputs are consumed), "
        "inventory_move to a sink location per item. success_rate of a recipe = successes / "
        "attempts."
    ),
    template=_with(_ALL_EVENTS, _IN_RANGE, _PLAYERS, _FLOWS)
    + """\
SELECT """
    + _GROUP
    + """
       f.flow AS flow, f.item AS item, MIN(f.kind) AS kind,
       SUM(f.w) AS events, SUM(f.w * f.amount) AS amount,
       SUM(f.w * f.ok) AS successes,
       COALESCE(SUM(f.w) FILTER (WHERE f.rarity = 'common'), 0) AS common,
       COALESCE(SUM(f.w) FILTER (WHERE f.rarity = 'uncommon'), 0) AS uncommon,
       COALESCE(SUM(f.w) FILTER (WHERE f.rarity = 'rare'), 0) AS rare,
       COALESCE(SUM(f.w) FILTER (WHERE f.rarity = 'epic'), 0) AS epic,
       COALESCE(SUM(f.w) FILTER (WHERE f.rarity = 'legendary'), 0) AS legendary
FROM flows f JOIN players pl ON pl.player = f.player
GROUP BY _all{group}, f.flow, f.item
ORDER BY _all{group}, f.flow, f.item
""",
)

METRICS: Final = {m.name: m for m in (FUNNEL, RETENTION, SESSIONS, COMBAT, XP, ECONOMY)}
"""Every metric by its CLI name (PROTOCOL.md §6)."""
