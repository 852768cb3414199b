"""Server-side emission through the real stack: a game server's `ServerEmitter` (over the
relay, `source: server`) and the players' SDK clients emit the same combat events; some client
events are withheld (lost); `insights parity` shows exactly that gap, per event per day.
Server rows carry the player's own pseudonym, a sequence space of their own, `source=server`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from nats.js import JetStreamContext

from gameplay_analytics.runtime.gateway.auth import issue_service_token
from gameplay_analytics.sdk import WebSocketConnector
from gameplay_analytics.sdk.server import ServerEmitter, server_client_guid
from tests.integration.support import aggregating, count_rows, wait_for
from tests.integration.test_gateway_e2e import new_client, running_gateway
from tests.integration.test_relay import RELAY_SECRET, relay_url

pytestmark = pytest.mark.integration

FIGHTS = {"a": 10, "b": 6}  # encounters per player
WITHHELD = {"a": 3, "b": 0}  # encounter_end events the client never sends (lost)


async def test_parity_report_shows_exactly_the_missing_client_events(
    nats_url: str, database: str, js: JetStreamContext, tmp_path: Path
) -> None:
    players = {k: str(uuid.uuid4()) for k in FIGHTS}
    instance = uuid.uuid4()
    # only this test's messages: the session's stream holds other tests' events
    async with (
        aggregating(nats_url, database, js),
        running_gateway(nats_url, relay_secret=RELAY_SECRET) as gw,
    ):
        emitter = ServerEmitter(
            relay_url(gw.url),
            service_token=lambda: issue_service_token("sim-eu-1", secret=RELAY_SECRET),
            instance_guid=instance,
            state_dir=tmp_path / "server",
            flush_interval_s=0.05,
        )
        emitter.start()
        connectors = []
        for key, player in players.items():
            client = new_client(gw, player_uuid=player, flush_interval_s=0.05)
            connector = WebSocketConnector(client, gw.url)
            connector.start()
            connectors.append(connector)
            client.track("skill_rank_up", skill="fire", rank=1)  # a client-only event
            for i in range(FIGHTS[key]):
                enc = f"enc_{key}_{i}"
                for side in (client, emitter.client(player)):
                    side.track("engage_enemy", enemy_id=f"orc_{i}", tier="boss")
                emitter.track(player, "encounter_end", encounter_id=enc, tier="boss", outcome="win")
                if i >= WITHHELD[key]:
                    client.track("encounter_end", encounter_id=enc, tier="boss", outcome="win")
        assert all([await c.stop(flush_timeout_s=30) for c in connectors])
        assert await emitter.stop(flush_timeout_s=30)
        expected = 2 * 2 * sum(FIGHTS.values()) - sum(WITHHELD.values()) + len(players)

        async def all_stored() -> bool:
            return await count_rows(database) >= expected

        await wait_for(all_stored, within=60)
    assert await count_rows(database) == expected

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT source, client_guid::text AS guid, analytics_player_id AS pid, event_name,"
            " count(*) AS n FROM analytics_events GROUP BY 1, 2, 3, 4"
        )
    finally:
        await conn.close()
    server_guids = {server_client_guid(instance, p) for p in players.values()}
    by_source: dict[str, set[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["pid"])
        assert (r["guid"] in server_guids) == (r["source"] == "server")
    assert by_source["server"] == by_source["client"]  # the same pseudonyms on both sides
    assert len(by_source["client"]) == len(players)

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", "parity",
         "--dsn", database, "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    total, lost = sum(FIGHTS.values()), sum(WITHHELD.values())
    combat = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", "combat",
         "--dsn", database, "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert combat.returncode == 0, combat.stderr
    # the other metrics count the clients' events only, never the server's copy
    assert sum(r["encounters"] for r in json.loads(combat.stdout)["rows"]) == (
        sum(FIGHTS.values()) - sum(WITHHELD.values())
    )
    assert report["metric"] == "parity"
    assert report["rows"] == [
        {"day": today, "event": "encounter_end", "client": total - lost, "server": total,
         "missing_client": lost, "client_share": round((total - lost) / total, 6)},
        {"day": today, "event": "engage_enemy", "client": total, "server": total,
         "missing_client": 0, "client_share": 1.0},
    ]  # fmt: skip


async def test_server_events_survive_a_dropped_relay_and_a_restart_once_each(
    nats_url: str, database: str, js: JetStreamContext, tmp_path: Path
) -> None:
    """Resends after a dropped relay are stored once; a restarted server instance (same
    guid and state_dir) continues its seqs, so none of its new events is taken for a repeat."""
    player, instance = str(uuid.uuid4()), uuid.uuid4()
    async with (
        aggregating(nats_url, database, js),
        running_gateway(nats_url, relay_secret=RELAY_SECRET) as gw,
    ):

        def emitter() -> ServerEmitter:
            return ServerEmitter(
                relay_url(gw.url),
                service_token=issue_service_token("sim-eu-1", secret=RELAY_SECRET),
                instance_guid=instance,
                state_dir=tmp_path / "server",
                flush_interval_s=0.02,
            )

        first = emitter()
        first.start()
        await asyncio.wait_for(first.connected.wait(), 10)
        for i in range(40):
            first.track(player, "engage_enemy", enemy_id=f"orc_{i}", tier="boss")
            if i == 20:
                await asyncio.sleep(0.05)
                first.disconnect()
        assert await first.stop(flush_timeout_s=30)
        assert first.connections >= 2  # it reconnected after the drop
        second = emitter()  # the server process restarted
        second.start()
        for i in range(15):
            second.track(player, "engage_enemy", enemy_id=f"orc_{i}", tier="boss")
        assert await second.stop(flush_timeout_s=30)

        async def all_stored() -> bool:
            return await count_rows(database) >= 55

        await wait_for(all_stored, within=60)
        await asyncio.sleep(0.5)  # a duplicate would have landed by now
    assert await count_rows(database) == 55
    conn = await asyncpg.connect(database)
    try:
        sources = await conn.fetch(
            "SELECT DISTINCT source, client_guid::text FROM analytics_events"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in sources] == [("server", server_client_guid(instance, player))]


async def test_a_player_who_opts_out_gets_no_more_server_events_stored(
    nats_url: str, database: str, js: JetStreamContext, tmp_path: Path
) -> None:
    player, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with (
        aggregating(nats_url, database, js),
        running_gateway(nats_url, relay_secret=RELAY_SECRET) as gw,
    ):
        emitter = ServerEmitter(
            relay_url(gw.url),
            service_token=issue_service_token("sim-eu-1", secret=RELAY_SECRET),
            instance_guid=uuid.uuid4(),
            flush_interval_s=0.02,
        )
        emitter.start()
        for who in (player, other):
            emitter.track(who, "engage_enemy", enemy_id="orc_1", tier="boss")

        async def idle() -> bool:
            return emitter.idle

        await wait_for(idle, within=30)
        emitter.set_consent(player, {"analytics": False})  # live: the conn reopens
        for who in (player, other):
            for i in range(5):
                emitter.track(who, "engage_enemy", enemy_id=f"orc_{i}", tier="boss")
        assert await emitter.stop(flush_timeout_s=30)

        async def all_stored() -> bool:
            return await count_rows(database) >= 7

        await wait_for(all_stored, within=60)
        await asyncio.sleep(0.5)
    assert await count_rows(database) == 7  # the player's first event, the other's six
    assert emitter.client(player).stats.opted_out == 5
