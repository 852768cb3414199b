"""nats-server killed mid-stream: not ready, backpressure, recovery, no acked event missing."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.runtime.gateway import Gateway, issue_token
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from tests.integration.test_gateway_e2e import SECRET, gateway_settings, player_events, stored

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return err.code


async def wait_for(check: Any, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_nats_outage_and_recovery(nats_server: Any, nats_url: str) -> None:
    gw = Gateway(gateway_settings(nats_url, publish_timeout_s=1.0, retry_after_ms=200))
    await gw.start()
    player = str(uuid.uuid4())
    client = AnalyticsClient(
        player_uuid=player, client_guid=uuid.uuid4(), token=issue_token(player, secret=SECRET)
    )
    connector = WebSocketConnector(client, gw.url)
    connector.start()
    stop = asyncio.Event()

    async def game() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(5):  # exempt events: every one must end up stored
                client.track("encounter_end", encounter_id=f"e{i}", tier="boss", outcome="win")
                i += 1
            await asyncio.sleep(0.02)

    playing = asyncio.create_task(game())
    try:
        await asyncio.wait_for(connector.welcomed.wait(), 5)
        await asyncio.sleep(0.5)
        acked_before = client.stats.events_acked
        assert acked_before > 0
        nats_server.kill()
        try:
            await wait_for(lambda: asyncio.to_thread(lambda: readyz(gw.metrics_port) == 503), 5)
            assert not gw.ready
            async with connect(gw.url) as ws:  # a new envelope is refused, not lost
                await ws.send(json.dumps({
                    "type": "hello", "token": issue_token(player, secret=SECRET),
                    "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
                }))  # fmt: skip
                assert json.loads(await ws.recv())["type"] == "welcome"
                event = {"seq": 1, "name": "session_start", "ts": 1, "props": {}}
                frame = {"type": "analytics", "id": 1, "schema": "1.0.0", "events": [event]}
                await ws.send(json.dumps(frame))
                refusal = json.loads(await ws.recv())
            assert (refusal["code"], refusal["id"], refusal["retry_after_ms"]) == (
                "backpressure", 1, 200,
            )  # fmt: skip
            await asyncio.sleep(1.5)  # the game keeps playing through the outage
            assert client.stats.backpressure > 0
        finally:
            nats_server.start()
        await wait_for(lambda: asyncio.to_thread(lambda: readyz(gw.metrics_port) == 200), 15)
        await asyncio.sleep(0.5)
        stop.set()
        await playing
        assert await connector.stop(flush_timeout_s=20), "client could not flush after recovery"
    finally:
        stop.set()
        if not nats_server.running:
            nats_server.start()
        await connector.stop(flush_timeout_s=0)
        await gw.drain_and_stop()
    events = player_events(await stored(nats_url, player))
    seqs = [e.seq for e in events]
    assert client.stats.events_acked == client.stats.buffered  # everything tracked was acked
    assert len(set(seqs)) == client.stats.buffered  # and every acked event is in the stream
    assert len(seqs) == len(set(seqs)), "an envelope was stored twice"
