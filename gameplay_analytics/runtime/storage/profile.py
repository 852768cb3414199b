"""The onboarding profile in the hot store: one restricted row per player (PROTOCOL.md §6).

It carries what funnels and retention need across a salt rotation — first session, first
combat, first win, the days active, class, region, platform, build and the playstyle's
activity counts — keyed by `privacy.profile.profile_key`, never exported, kept
`PROFILE_RETENTION_DAYS` after activation, erased by `erase_profile`. The aggregator upserts
it in the same transaction as the events (`hot.write_batch`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import asyncpg

from gameplay_analytics.contract.taxonomy import EVENTS, Category
from gameplay_analytics.privacy.profile import PROFILE_RETENTION_DAYS
from gameplay_analytics.runtime.storage.schema import PROFILE_TABLE

__all__ = [
    "PROFILE_EVENTS",
    "PROFILE_PROPS",
    "ProfileUpdate",
    "erase_profile",
    "expire_profiles",
    "merge_profiles",
    "upsert_profiles",
]

_SOCIAL: Final = frozenset(n for n, spec in EVENTS.items() if spec.category is Category.SOCIAL)
# The props a profile reads; an event not named here is never decoded for it.
PROFILE_PROPS: Final = frozenset({"session_start", "encounter_end", "xp_gain"})
# The events `observe` reads beyond their day: of any other, a batch need only add the day
# (`active_days`), which the aggregator does once per message and day.
PROFILE_EVENTS: Final = PROFILE_PROPS | {"engage_enemy", "craft_result"} | _SOCIAL


@dataclasses.dataclass(slots=True)
class ProfileUpdate:
    """What one batch of a player's stored events adds to their profile.

    `first_combat_rate` is the sample rate of the earliest stored `engage_enemy`, and
    `first_certain_combat_at` the earliest one kept at rate 1.0 (elite, boss): with cohort
    sampling the funnel weighs a player by what was certain to be seen (insights' estimator).
    Counts are weighted 1/sample_rate; a redelivered message may count twice (they only pick
    the playstyle), the first-times and active days are idempotent.
    """

    key: str
    first_session_at: dt.datetime | None = None
    character_class: str | None = None
    region: str | None = None
    platform: str | None = None
    build: str | None = None
    first_combat_at: dt.datetime | None = None
    first_combat_rate: float | None = None
    first_certain_combat_at: dt.datetime | None = None
    first_win_at: dt.datetime | None = None
    active_days: set[dt.date] = dataclasses.field(default_factory=set)
    fights: float = 0.0
    explores: float = 0.0
    crafts: float = 0.0
    socials: float = 0.0

    def observe(
        self,
        name: str,
        ts: dt.datetime,
        *,
        rate: float,
        props: Mapping[str, Any],
        region: str | None = None,
        platform: str | None = None,
        build: str | None = None,
    ) -> None:
        """Add one stored event (`ts` in UTC). The activity counts follow insights'
        playstyle rule (`insights.definitions.PLAYSTYLE_RULE`); the ground-truth tests check
        that this profile and the events give every player the same playstyle."""
        self.active_days.add(ts.astimezone(dt.UTC).date())
        weight = 1.0 / rate if rate > 0 else 0.0
        if name == "session_start":
            if _earlier(ts, self.first_session_at):
                self.first_session_at = ts
                klass = props.get("character_class")
                self.character_class = klass if isinstance(klass, str) and klass else None
                self.region, self.platform, self.build = region, platform, build
        elif name == "engage_enemy":
            if _earlier(ts, self.first_combat_at):
                self.first_combat_at, self.first_combat_rate = ts, rate
            if rate >= 1.0 and _earlier(ts, self.first_certain_combat_at):
                self.first_certain_combat_at = ts
        elif name == "encounter_end":
            self.fights += weight
            if props.get("outcome") == "win" and _earlier(ts, self.first_win_at):
                self.first_win_at = ts
        elif name == "xp_gain":
            if props.get("source") != "combat":
                self.explores += weight
        elif name == "craft_result":
            self.crafts += weight
        elif name in _SOCIAL:
            self.socials += weight

    def merge(self, other: ProfileUpdate) -> None:
        if _earlier(other.first_session_at, self.first_session_at):
            self.first_session_at = other.first_session_at
            for name in ("character_class", "region", "platform", "build"):
                setattr(self, name, getattr(other, name) or getattr(self, name))
        if _earlier(other.first_combat_at, self.first_combat_at):
            self.first_combat_at, self.first_combat_rate = (
                other.first_combat_at, other.first_combat_rate
            )  # fmt: skip
        if _earlier(other.first_certain_combat_at, self.first_certain_combat_at):
            self.first_certain_combat_at = other.first_certain_combat_at
        if _earlier(other.first_win_at, self.first_win_at):
            self.first_win_at = other.first_win_at
        self.active_days |= other.active_days
        self.fights += other.fights
        self.explores += other.explores
        self.crafts += other.crafts
        self.socials += other.socials


def merge_profiles(updates: Iterable[ProfileUpdate]) -> list[ProfileUpdate]:
    """One update per key (a batch may hold several messages of one player)."""
    merged: dict[str, ProfileUpdate] = {}
    for update in updates:
        found = merged.get(update.key)
        if found is None:
            merged[update.key] = dataclasses.replace(update, active_days=set(update.active_days))
        else:
            found.merge(update)
    return [merged[k] for k in sorted(merged)]  # fixed lock order


_COLUMNS: Final = (
    "profile_key", "first_session_at", "character_class", "region", "platform", "build",
    "first_combat_at", "first_combat_rate", "first_certain_combat_at", "first_win_at",
    "active_days", "fights", "explores", "crafts", "socials",
)  # fmt: skip
_TYPES: Final = (
    "text", "timestamptz", "text", "text", "text", "text", "timestamptz", "real",
    "timestamptz", "timestamptz", "text", "double precision", "double precision",
    "double precision", "double precision",
)  # fmt: skip


def _first_of(column: str, at: str) -> str:
    # The value that goes with the earlier `at`; NULLs never win.
    return (
        f"CASE WHEN p.{at} IS NULL OR EXCLUDED.{at} < p.{at} "
        f"THEN COALESCE(EXCLUDED.{column}, p.{column}) ELSE COALESCE(p.{column}, "
        f"EXCLUDED.{column}) END"
    )


_UPSERT: Final = (
    f"INSERT INTO {PROFILE_TABLE} AS p ({', '.join(_COLUMNS)}, activation_day) "
    "SELECT u.profile_key, u.first_session_at, u.character_class, u.region, u.platform, "
    "u.build, u.first_combat_at, u.first_combat_rate, u.first_certain_combat_at, "
    "u.first_win_at, u.active_days::date[], u.fights, u.explores, u.crafts, u.socials, "
    "(u.first_session_at AT TIME ZONE 'UTC')::date "
    "FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_TYPES))
    + ") AS u("
    + ", ".join(_COLUMNS)
    + ") ON CONFLICT (profile_key) DO UPDATE SET "
    "first_session_at = LEAST(p.first_session_at, EXCLUDED.first_session_at), "
    "activation_day = LEAST(p.activation_day, EXCLUDED.activation_day), "
    + ", ".join(
        f"{c} = {_first_of(c, 'first_session_at')}"
        for c in ("character_class", "region", "platform", "build")
    )
    + ", first_combat_rate = "
    + _first_of("first_combat_rate", "first_combat_at")
    + ", first_combat_at = LEAST(p.first_combat_at, EXCLUDED.first_combat_at), "
    "first_certain_combat_at = LEAST(p.first_certain_combat_at, "
    "EXCLUDED.first_certain_combat_at), "
    "first_win_at = LEAST(p.first_win_at, EXCLUDED.first_win_at), "
    "active_days = ARRAY(SELECT DISTINCT d FROM unnest(p.active_days || EXCLUDED.active_days) "
    "AS d ORDER BY d), "
    "fights = p.fights + EXCLUDED.fights, explores = p.explores + EXCLUDED.explores, "
    "crafts = p.crafts + EXCLUDED.crafts, socials = p.socials + EXCLUDED.socials, "
    "updated_at = now()"
)


async def upsert_profiles(conn: asyncpg.Connection, updates: Sequence[ProfileUpdate]) -> None:
    """Merge the updates into their profiles (call inside the events' transaction)."""
    if not updates:
        return
    columns: list[list[object]] = [[] for _ in _COLUMNS]
    for u in updates:
        days = "{" + ",".join(sorted(d.isoformat() for d in u.active_days)) + "}"
        values = (
            u.key, u.first_session_at, u.character_class, u.region, u.platform, u.build,
            u.first_combat_at, u.first_combat_rate, u.first_certain_combat_at, u.first_win_at,
            days, u.fights, u.explores, u.crafts, u.socials,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(_UPSERT, *columns)


async def erase_profile(conn: asyncpg.Connection, key: str) -> int:
    """Delete one player's profile (an erasure request); returns the rows deleted (0 or 1)."""
    deleted = await conn.fetchval(
        f"WITH gone AS (DELETE FROM {PROFILE_TABLE} WHERE profile_key = $1 RETURNING 1) "
        "SELECT count(*) FROM gone",
        key,
    )
    return int(deleted or 0)


async def expire_profiles(
    conn: asyncpg.Connection, *, today: dt.date, keep_days: int = PROFILE_RETENTION_DAYS
) -> int:
    """Delete the profiles activated more than `keep_days` before `today`."""
    deleted = await conn.fetchval(
        f"WITH gone AS (DELETE FROM {PROFILE_TABLE} WHERE activation_day < $1 "
        "OR (activation_day IS NULL AND updated_at < $2) RETURNING 1) SELECT count(*) FROM gone",
        today - dt.timedelta(days=keep_days),
        dt.datetime.combine(today - dt.timedelta(days=keep_days), dt.time(), tzinfo=dt.UTC),
    )
    return int(deleted or 0)


def _earlier(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    return a is not None and (b is None or a < b)
