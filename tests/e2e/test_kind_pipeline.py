"""On the kind cluster: the pipeline is Ready, synthetic players' events (through the Python SDK
and on the raw wire) land in Postgres once, and a SamplingPolicy edit reaches connected SDK
clients without a reconnect."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest

from gameplay_analytics.sdk.client import AnalyticsClient
from gameplay_analytics.sdk.connector import WebSocketConnector
from tests.e2e.conftest import NAMESPACE, PIPELINE, WS_URL, kubectl, kubectl_json
from tests.e2e.players import ALWAYS_KEPT, Player, token

PLAYERS = 8
STORE_TIMEOUT_S = 120.0
RELOAD_TIMEOUT_S = 90.0

pytestmark = pytest.mark.usefixtures("cluster")


def _condition(obj: dict[str, object], kind: str) -> dict[str, str]:
    conditions = obj.get("status", {}).get("conditions", [])  # type: ignore[union-attr]
    return next((c for c in conditions if c["type"] == kind), {})


def test_pipeline_reports_ready_for_its_current_generation() -> None:
    pipeline = kubectl_json("get", f"analyticspipeline/{PIPELINE}")
    ready = _condition(pipeline, "Ready")
    assert ready.get("status") == "True", ready
    assert pipeline["status"]["observedGeneration"] == pipeline["metadata"]["generation"]
    printed = kubectl("get", "ap", PIPELINE)  # the printer columns an SRE reads
    assert PIPELINE in printed


async def _stored_rows(dsn: str, guids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM analytics_events WHERE client_guid = ANY($1::uuid[])", guids
        )
        return int(count)
    finally:
        await conn.close()


async def test_wire_players_events_are_stored_once_despite_a_resend(
    postgres_dsn: str, jwt_secret: str
) -> None:
    players = await asyncio.gather(*(Player.join(WS_URL, jwt_secret) for _ in range(PLAYERS)))
    try:
        acks = await asyncio.gather(*(p.send(ALWAYS_KEPT) for p in players))
        assert all(a["accepted"] == len(ALWAYS_KEPT) and not a.get("rejected") for a in acks)
        # An envelope resent as after a lost ack (same seqs) must not be stored twice.
        retry = players[0]
        retry.seq -= len(ALWAYS_KEPT)
        retry.envelope -= 1
        await retry.send(ALWAYS_KEPT)
    finally:
        await asyncio.gather(*(p.close() for p in players))
    guids = [p.client_guid for p in players]
    expected = PLAYERS * len(ALWAYS_KEPT)
    deadline = time.monotonic() + STORE_TIMEOUT_S
    stored = 0
    while time.monotonic() < deadline:
        stored = await _stored_rows(postgres_dsn, guids)
        if stored >= expected:
            break
        await asyncio.sleep(2)
    assert stored == expected
    await asyncio.sleep(5)  # a late duplicate would show up now
    assert await _stored_rows(postgres_dsn, guids) == expected


def _sdk_player(secret: str) -> tuple[AnalyticsClient, WebSocketConnector]:
    player, guid = uuid.uuid4(), uuid.uuid4()
    client = AnalyticsClient(
        player_uuid=player,
        client_guid=guid,
        token=lambda: token(secret, player),
        build="e2e+kind",
        platform="linux64",
        consent={"analytics": True, "social": True},
    )
    connector = WebSocketConnector(client, WS_URL, open_timeout_s=30.0)
    connector.start()
    return client, connector


async def _welcomed(connectors: list[WebSocketConnector]) -> None:
    await asyncio.gather(*(asyncio.wait_for(c.welcomed.wait(), 60) for c in connectors))


async def test_sdk_players_events_are_stored(postgres_dsn: str, jwt_secret: str) -> None:
    players = [_sdk_player(jwt_secret) for _ in range(PLAYERS)]
    connectors = [connector for _, connector in players]
    try:
        await _welcomed(connectors)
        for client, _ in players:
            for name, props in ALWAYS_KEPT:
                client.track(name, **props)
        idle = await asyncio.gather(*(c.wait_idle(STORE_TIMEOUT_S) for c in connectors))
        assert all(idle), "every envelope acked by the gateway"
    finally:
        await asyncio.gather(*(c.stop() for c in connectors))
    guids = [uuid.UUID(client.client_guid) for client, _ in players]
    expected = PLAYERS * len(ALWAYS_KEPT)
    deadline = time.monotonic() + STORE_TIMEOUT_S
    while (stored := await _stored_rows(postgres_dsn, guids)) < expected:
        assert time.monotonic() < deadline, f"{stored} of {expected} events stored"
        await asyncio.sleep(2)
    assert stored == expected


async def test_sampling_policy_edit_reaches_connected_clients(jwt_secret: str) -> None:
    pipeline = kubectl_json("get", f"analyticspipeline/{PIPELINE}")
    policy_name = pipeline["spec"]["samplingPolicyRef"]["name"]
    policy = kubectl_json("get", f"samplingpolicy/{policy_name}")
    old_rate = policy["spec"].get("rules", {}).get("classes", {}).get("social", {}).get("rate")
    new_rate = 0.125 if old_rate != 0.125 else 0.25
    client, connector = _sdk_player(jwt_secret)
    try:
        await _welcomed([connector])
        before = client.sampling_version
        patch = {"spec": {"rules": {"classes": {"social": {"rate": new_rate}}}}}
        kubectl("patch", f"samplingpolicy/{policy_name}", "--type=merge", "-p", json.dumps(patch))
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while client.sampling_version == before:
            assert time.monotonic() < deadline, "no new sampling rules reached the client"
            await asyncio.sleep(1)
        assert connector.connections == 1, "hot reload, not a reconnect"
        name, props = ALWAYS_KEPT[0]
        client.track(name, **props)
        assert await connector.wait_idle(30), "the same connection still delivers events"
    finally:
        await connector.stop()
    newcomer = await Player.join(WS_URL, jwt_secret)
    try:
        assert newcomer.welcome["sampling_version"] == client.sampling_version
    finally:
        await newcomer.close()
    status = kubectl_json("get", f"samplingpolicy/{policy_name}").get("status", {})
    if "samplingVersion" in status:
        assert status["samplingVersion"] == client.sampling_version
    assert NAMESPACE  # every kubectl call above ran in the e2e namespace
