"""Scripted players through the real stack — WebSocket gateway (sampling guard), JetStream,
aggregator (pseudonyms, onboarding profile), Postgres, Parquet — then the insights JSON of
PROTOCOL.md §6 against the truth computed from the script, at the default sampling rates and
across salt months (the players' first days lie 40 days back, their last in this month).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.insights import warehouse
from gameplay_analytics.local.stack import LocalStack, StackConfig
from gameplay_analytics.runtime.gateway import issue_token
from gameplay_analytics.runtime.storage import warm_sessions
from gameplay_analytics.runtime.storage.warm import WarmStore
from tests.insights import script
from tests.insights.support import DEFAULTS

pytestmark = pytest.mark.integration

SECRET = "insights-real-stack-secret-at-least-32-bytes"
PLAYERS = 120


async def _play(url: str, player: script.Player) -> None:
    """One connection: hello, then the script's events with their own timestamps."""
    events = [{"seq": i + 1, "name": name, "ts": int(ts.timestamp() * 1000), "props": props}
              for i, (ts, name, props) in enumerate(player.events())]  # fmt: skip
    async with connect(url) as ws:
        await ws.send(json.dumps({
            "type": "hello", "token": issue_token(player.uuid, secret=SECRET,
                                                  region=player.region),
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0", "build": player.build,
            "platform": player.platform, "consent": {"analytics": True, "social": True},
        }))  # fmt: skip
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        await ws.send(json.dumps({"type": "analytics", "id": 1, "schema": "1.0.0",
                                  "events": events}))  # fmt: skip
        while True:
            reply = json.loads(await ws.recv())
            if reply["type"] == "ack":
                assert not reply.get("rejected"), reply
                return
            assert reply["type"] == "sampling", reply


async def _stored(dsn: str, root: Path) -> tuple[int, int]:
    """(events in Postgres and Parquet together, onboarding profiles)."""
    conn = await asyncpg.connect(dsn)
    try:
        hot = await conn.fetchval("SELECT count(*) FROM analytics_events")
        profiles = await conn.fetchval("SELECT count(*) FROM analytics_player_profile")
    finally:
        await conn.close()
    rows = await asyncio.to_thread(
        warehouse.query, str(root), "SELECT count(*) FROM analytics_events"
    )
    return int(hot) + int(rows[0][0]), int(profiles)


def _insights(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", *args, "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


async def test_scripted_players_through_the_real_stack(tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= dt.timedelta(days=40)
    players = script.population(PLAYERS, start=start, seed=12, days=4)
    expected = len(script.stored_rows(players, DEFAULTS))
    stack = LocalStack(StackConfig(data_dir=tmp_path / "stack", jwt_secret=SECRET))
    await asyncio.to_thread(stack.start)
    try:
        for chunk in range(0, PLAYERS, 20):
            await asyncio.gather(*(_play(stack.ws_url, p) for p in players[chunk : chunk + 20]))
        deadline = asyncio.get_running_loop().time() + 60
        while await _stored(stack.postgres.dsn, stack.warehouse_root) != (expected, PLAYERS):
            assert asyncio.get_running_loop().time() < deadline, "the stack did not store it all"
            await asyncio.sleep(0.5)
        endpoints = stack.endpoints_path
        assert endpoints.is_file()

        # Hot store: funnel and retention from the onboarding profile, across salt months.
        funnel = {r["step"]: r for r in _insights("funnel", "--endpoints", str(endpoints))["rows"]}
        truth = script.true_funnel(players, 7)
        assert funnel["first_session"]["players"] == truth["first_session"] == PLAYERS
        # encounter_end is never sampled: exact; engage_enemy is (normal tier at 0.5).
        assert funnel["first_combat_win"]["players"] == truth["first_combat_win"]
        rate = truth["first_combat"] / PLAYERS
        assert funnel["first_combat"]["rate_low"] <= rate <= funnel["first_combat"]["rate_high"]
        rows = _insights("retention", "--endpoints", str(endpoints))["rows"]
        retention = {(r["activation_day"], r["day"]): (r["players"], r["retained"]) for r in rows}
        assert retention == script.true_retention(players)

        # Warm store: every day exported, then combat and XP over the Parquet files.
        pool = await asyncpg.create_pool(stack.postgres.dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                days = [r["event_day"] for r in await conn.fetch(
                    "SELECT DISTINCT event_day FROM analytics_events")]  # fmt: skip
            warm = WarmStore(str(stack.warehouse_root))
            for day in days:
                await warm.export_day(pool, day)
                await warm_sessions.export_sessions_day(pool, warm, day)
        finally:
            await pool.close()
        root = str(stack.warehouse_root)
        # The sessions the gateway saw, exported once each: here one per connection (a
        # player's scripted sessions share it), which is why the sessions metric counts
        # session_start events rather than these rows (docs/analytics.md).
        ((exported, distinct, players_seen),) = await asyncio.to_thread(
            warehouse.query, root, "SELECT count(*), count(DISTINCT session_id), "
            "count(DISTINCT analytics_player_id) FROM analytics_sessions "
            "WHERE started_at IS NOT NULL AND ended_at >= started_at",
        )  # fmt: skip
        assert exported == distinct == PLAYERS
        assert PLAYERS <= players_seen <= 3 * PLAYERS  # a pseudonym per salt month
        rows = _insights("combat", "--store", "warm", "--root", root)["rows"]
        combat = {r["tier"]: r for r in rows}
        for tier, counts in script.true_combat(players).items():
            assert (combat[tier]["encounters"], combat[tier]["wins"]) == (
                counts["encounters"], counts["win"]
            )  # fmt: skip
        (xp,) = _insights("xp", "--store", "warm", "--root", root)["rows"]
        # The warm store counts a pseudonym per salt month (40 days span two or three): the
        # ratio of totals does not care, the player count does (docs/insights.md, limits).
        assert PLAYERS <= xp["players"] <= 3 * PLAYERS
        assert xp["xp_per_hour_low"] <= script.true_xp_per_hour(players) <= xp["xp_per_hour_high"]
    finally:
        await asyncio.to_thread(stack.stop)
