"""Hot reload from the `analytics-config` bucket, and the circuit breaker's sampling pushes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.contract import messages
from gameplay_analytics.runtime.gateway import Gateway, issue_token
from gameplay_analytics.sampling.compiled import CompiledRules
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from gameplay_analytics.sdk.client import default_rules
from tests.integration.test_gateway_e2e import SECRET, gateway_settings, player_events, stored
from tests.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def config_kv(nats_url: str) -> AsyncIterator[object]:
    nc = await nats.connect(nats_url)
    kv = await nc.jetstream().key_value(messages.KV_BUCKET)
    try:
        yield kv
    finally:  # the bucket is shared by the session: leave the defaults behind
        for key in (messages.KV_SAMPLING_KEY, messages.KV_SCHEMAS_KEY):
            with contextlib.suppress(Exception):
                await kv.delete(key)
        await nc.close()


def client_for(gw: Gateway) -> tuple[AnalyticsClient, WebSocketConnector]:
    player = str(uuid.uuid4())
    client = AnalyticsClient(
        player_uuid=player, client_guid=uuid.uuid4(), token=issue_token(player, secret=SECRET)
    )
    return client, WebSocketConnector(client, gw.url)


async def test_rules_and_schemas_reload_without_restart(nats_url: str) -> None:
    gw = Gateway(gateway_settings(nats_url, rules_grace_s=0.0))
    await gw.start()
    nc = await nats.connect(nats_url)
    kv = await nc.jetstream().key_value(messages.KV_BUCKET)
    client, connector = client_for(gw)
    try:
        connector.start()
        await asyncio.wait_for(connector.welcomed.wait(), 5)
        wire = default_rules().to_wire()
        wire["events"]["xp_gain"]["rate"] = 1.0
        wire["events"]["client_tick"]["rate"] = 0.0
        new = CompiledRules.from_wire(wire)
        await kv.put(messages.KV_SAMPLING_KEY, json.dumps(wire).encode())
        await eventually(lambda: client.sampling_version == new.version)
        assert gw.live.rules == new
        for i in range(20):
            client.track("xp_gain", amount=i, source="quest")
            client.track("client_tick", fps=30.0)
        assert await connector.wait_idle(5)
        events = player_events(await stored(nats_url, client.player_uuid))
        assert sorted(e.name for e in events) == ["xp_gain"] * 20
        assert {e.sample_rate for e in events} == {1.0}

        await kv.put(messages.KV_SCHEMAS_KEY, b'{"accepted": []}')
        await eventually(lambda: gw.live.registry.versions == [])
        client.track("session_start")
        await eventually(lambda: client.version_refused is not None)

        await kv.delete(messages.KV_SAMPLING_KEY)
        await kv.delete(messages.KV_SCHEMAS_KEY)
        await eventually(lambda: gw.live.registry.versions == ["1.0.0"])
        await eventually(lambda: client.sampling_version == default_rules().version)
    finally:
        for key in (messages.KV_SAMPLING_KEY, messages.KV_SCHEMAS_KEY):
            with contextlib.suppress(Exception):
                await kv.delete(key)
        await nc.close()
        await connector.stop(flush_timeout_s=0)
        await gw.drain_and_stop()


async def test_overload_lowers_the_multiplier_and_recovery_restores_it(nats_url: str) -> None:
    gw = Gateway(
        gateway_settings(
            nats_url, queue_capacity=100, breaker_hold_s=0.0, breaker_recover_hold_s=0.0,
            breaker_interval_s=0.05,
        )
    )  # fmt: skip
    await gw.start()
    client, connector = client_for(gw)
    try:
        connector.start()
        await asyncio.wait_for(connector.welcomed.wait(), 5)
        gw.worker.depth = 95  # as if the store had fallen behind
        await eventually(lambda: client.multiplier < 1.0)
        assert gw.multiplier == client.multiplier
        gw.worker.depth = 0
        await eventually(lambda: client.multiplier == 1.0)
    finally:
        gw.worker.depth = 0
        await connector.stop(flush_timeout_s=0)
        await gw.drain_and_stop()


async def test_welcome_carries_kv_rules_at_start(nats_url: str, config_kv: object) -> None:
    wire = default_rules().to_wire()
    wire["events"]["loot_drop"]["rate"] = 0.75
    await config_kv.put(messages.KV_SAMPLING_KEY, json.dumps(wire).encode())  # type: ignore[attr-defined]
    gw = Gateway(gateway_settings(nats_url))
    await gw.start()
    try:
        async with connect(gw.url) as ws:
            player = str(uuid.uuid4())
            await ws.send(json.dumps({
                "type": "hello", "token": issue_token(player, secret=SECRET),
                "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
            }))  # fmt: skip
            welcome = json.loads(await ws.recv())
        assert welcome["sampling"]["events"]["loot_drop"]["rate"] == 0.75
        assert welcome["sampling_version"] == CompiledRules.from_wire(wire).version
    finally:
        await gw.drain_and_stop()
