"""The onboarding profile through the real aggregator: upserted with the events, keyed by
its own keyed hash, merged across messages and salt months, erasable, expiring."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
from nats.js import JetStreamContext

from gameplay_analytics.privacy.profile import profile_key
from gameplay_analytics.runtime.storage import profile
from tests.integration.support import (
    NOW_MS,
    aggregating,
    batch,
    edge_keys,
    event,
    publish,
    wait_for,
)

SECRET = "profile-test-secret"
DAY_MS = 86_400_000


async def _profile(dsn: str, key: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT * FROM analytics_player_profile WHERE profile_key = $1", key
        )
    finally:
        await conn.close()


async def test_the_aggregator_keeps_one_profile_per_player_across_months(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    # 40 days ago, then today: always two salt months, two analytics_player_ids.
    t0 = NOW_MS - 40 * DAY_MS
    first = [
        event(1, "session_start", ts=t0, character_class="cleric"),
        event(2, "engage_enemy", ts=t0 + 60_000, enemy_id="orc", tier="boss"),
        event(3, "encounter_end", ts=t0 + 90_000, encounter_id="e", tier="boss",
              outcome="win"),
    ]  # fmt: skip
    later = [event(4, "session_start", ts=NOW_MS)]
    keys = edge_keys(profile_secret=SECRET)  # the gateway computes the key (the edge step)
    async with aggregating(nats_url, database, js):
        await publish(
            js, [batch(player, guid, first, keys=keys), batch(player, guid, later, keys=keys)]
        )
        key = profile_key(player, SECRET)
        await wait_for(lambda: _merged(database, key))
    row = await _profile(database, key)
    assert row is not None
    activated = dt.datetime.fromtimestamp(t0 / 1000, dt.UTC)
    assert row["first_session_at"] == activated
    assert row["activation_day"] == activated.date()
    assert (row["character_class"], row["region"], row["platform"]) == ("cleric", "eu-west",
                                                                        "win64")  # fmt: skip
    assert row["first_win_at"] == activated + dt.timedelta(seconds=90)
    assert row["first_certain_combat_at"] == activated + dt.timedelta(seconds=60)
    assert sorted(row["active_days"]) == [activated.date(), activated.date() + dt.timedelta(40)]
    assert row["fights"] == 1.0
    conn = await asyncpg.connect(database)
    try:
        ids = await conn.fetchval(
            "SELECT count(DISTINCT analytics_player_id) FROM analytics_events"
        )
        assert ids == 2  # two salt months, yet one profile
        text = str([dict(r) for r in await conn.fetch("SELECT * FROM analytics_player_profile")])
        assert player not in text  # no raw UUID, only the keyed hash
        assert await profile.erase_profile(conn, key) == 1
        assert await profile.erase_profile(conn, key) == 0
    finally:
        await conn.close()


async def test_profiles_expire_after_37_days(database: str) -> None:
    from gameplay_analytics.runtime import storage

    conn = await asyncpg.connect(database)
    try:
        await storage.migrate(conn)
        day = dt.date(2025, 1, 1)
        old = profile.ProfileUpdate("a" * 64)
        old.observe("session_start", dt.datetime(2025, 1, 1, 9, tzinfo=dt.UTC), rate=1.0,
                    props={})  # fmt: skip
        new = profile.ProfileUpdate("b" * 64)
        new.observe("session_start", dt.datetime(2025, 1, 20, 9, tzinfo=dt.UTC), rate=1.0,
                    props={})  # fmt: skip
        await profile.upsert_profiles(conn, [old, new])
        assert await profile.expire_profiles(conn, today=day + dt.timedelta(days=37)) == 0
        assert await profile.expire_profiles(conn, today=day + dt.timedelta(days=38)) == 1
        keys = [r["profile_key"] for r in await conn.fetch(
            "SELECT profile_key FROM analytics_player_profile")]  # fmt: skip
        assert keys == ["b" * 64]
    finally:
        await conn.close()


async def _merged(dsn: str, key: str) -> bool:
    row = await _profile(dsn, key)
    return row is not None and len(row["active_days"]) == 2
