"""SDK → gateway → JetStream, read back independently from the stream.

The gateway runs in-process on free ports against the session's nats-server; each test uses
fresh player UUIDs, so the shared stream needs no purge.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from websockets.asyncio.client import connect

from gameplay_analytics.contract import messages
from gameplay_analytics.privacy.edge import PlayerEdge
from gameplay_analytics.privacy.pseudonym import month_of
from gameplay_analytics.runtime.gateway import Gateway, GatewaySettings, issue_token
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from gameplay_analytics.sdk.client import default_rules

pytestmark = pytest.mark.integration

SECRET = "integration-test-secret-integration-test-secret"


def gateway_settings(nats_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "nats_url": nats_url, "jwt_secret": SECRET, "ws_host": "127.0.0.1", "ws_port": 0,
        "metrics_host": "127.0.0.1", "metrics_port": 0, "publish_timeout_s": 1.0,
        "drain_timeout_s": 5.0,
    }  # fmt: skip
    values.update(overrides)
    return GatewaySettings(**values)


@contextlib.asynccontextmanager
async def running_gateway(nats_url: str, **overrides: Any) -> AsyncIterator[Gateway]:
    """A gateway in this process on free ports, drained and stopped afterwards."""
    gw = Gateway(gateway_settings(nats_url, **overrides))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.drain_and_stop()


@pytest.fixture
async def gateway(nats_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(nats_url) as gw:
        yield gw


def edge(player: str) -> PlayerEdge:
    """The player as a test gateway (default keys: the development salt) publishes them."""
    keys, _ = gateway_settings("nats://unused").edge_keys()
    return keys.player(player, None)


def pseudonyms(player: str) -> list[bytes]:
    """The player's `analytics_player_id` of this month and the last: every published batch
    and DLQ entry names the player by the one of its receipt's month (the edge step)."""
    today = dt.datetime.now(dt.UTC).date()
    months = {month_of(today), month_of(today.replace(day=1) - dt.timedelta(days=1))}
    player_edge = edge(player)
    return [player_edge.player_id(m).encode() for m in months]


async def stored(
    nats_url: str, player: str, subject: str = messages.EVENTS_SUBJECT
) -> list[tuple[str | None, bytes]]:
    """(Nats-Msg-Id, payload) of every message on `subject` for `player` (found by their
    pseudonyms, or by `player` itself: a client_guid), read independently; of a
    group-committed bundle, only the player's batches (each with the bundle's id)."""
    needles = [*pseudonyms(player), player.encode()]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            subject,
            stream=messages.STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=5
            ),
        )
        found: list[tuple[str | None, bytes]] = []
        while True:
            try:
                batch = await sub.fetch(2000, timeout=0.3)
            except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                break
            for msg in batch:
                if any(needle in msg.data for needle in needles):
                    ident = (msg.headers or {}).get("Nats-Msg-Id")
                    parts = messages.split_events(msg.data)
                    found.extend((ident, p) for p in parts if any(n in p for n in needles))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def player_events(rows: list[tuple[str | None, bytes]]) -> list[messages.PublishedEvent]:
    return [e for _, data in rows for e in messages.decode_batch(data).events]


def new_client(gw: Gateway, **kwargs: Any) -> AnalyticsClient:
    player = kwargs.pop("player_uuid", str(uuid.uuid4()))
    return AnalyticsClient(
        player_uuid=player, client_guid=uuid.uuid4(), token=issue_token(player, secret=SECRET),
        **kwargs,
    )  # fmt: skip


def play(client: AnalyticsClient, rounds: int) -> None:
    client.track("session_start", character_class="mage")
    for i in range(rounds):
        client.track("engage_enemy", enemy_id=f"orc_{i}", tier=("normal", "elite", "boss")[i % 3])
        client.track("damage_dealt", amount=float(i), tier="normal")
        client.track("xp_gain", amount=i, source="quest")
        client.track("encounter_end", encounter_id=f"enc_{i}", tier="elite", outcome="win")
        client.track("chat_message", length=i)
        client.track("client_tick", fps=60.0)


async def test_sdk_events_are_stored_exactly_once(gateway: Gateway, nats_url: str) -> None:
    clients = [new_client(gateway) for _ in range(3)]
    connectors = [WebSocketConnector(c, gateway.url) for c in clients]
    for connector in connectors:
        connector.start()
    for client in clients:
        play(client, 60)
    assert all(await asyncio.gather(*(c.stop(flush_timeout_s=10) for c in connectors)))
    rules = default_rules()
    for client in clients:
        assert client.stats.errors == 0 and client.stats.events_rejected == 0
        assert client.stats.events_acked == client.stats.buffered > 60
        rows = await stored(nats_url, client.player_uuid)
        events = player_events(rows)
        seqs = [e.seq for e in events]
        assert len(seqs) == len(set(seqs)) == client.stats.buffered  # each exactly once
        for event in events:
            props = event.props
            assert event.sample_rate == rules.rate_for(event.name, props)
            assert event.cohort == rules.cohort_for(event.name)  # what the aggregator re-checks
        batch = messages.decode_batch(rows[0][1])
        assert batch.client_guid == client.client_guid and batch.session_id
        player_edge = edge(client.player_uuid)
        assert batch.player_ids == {m: player_edge.player_id(m) for m in batch.player_ids}
        assert batch.profile_key == player_edge.profile_key
        for _, payload in rows:  # the edge step: neither the player's UUID nor the address
            assert client.player_uuid.encode() not in payload
            assert b"127.0.0.1" not in payload


async def test_resend_after_disconnect_is_stored_once(gateway: Gateway, nats_url: str) -> None:
    client = new_client(gateway)
    async with connect(gateway.url) as ws:
        await ws.send(client.on_connected(), text=True)
        client.on_frame(await ws.recv())
        for i in range(5):
            client.track("encounter_end", encounter_id=f"e{i}", tier="boss", outcome="loss")
        [frame] = client.poll(now=1000.0)
        await ws.send(frame, text=True)
        for _ in range(100):  # stored in JetStream, ack not read: then the network dies
            if await stored(nats_url, client.player_uuid):
                break
        ws.transport.abort()
    client.on_disconnected()
    async with connect(gateway.url) as ws:
        await ws.send(client.on_connected(), text=True)
        client.on_frame(await ws.recv())
        [again] = client.poll(now=2000.0)
        assert again == frame
        await ws.send(again, text=True)
        reply = json.loads(await ws.recv())
    assert reply == {"type": "ack", "id": json.loads(frame)["id"], "accepted": 5}
    rows = await stored(nats_url, client.player_uuid)
    assert len(rows) == 1  # JetStream deduplicated the resend on its Nats-Msg-Id
    seqs = [e["seq"] for e in json.loads(frame)["events"]]
    assert rows[0][0] == messages.msg_id(
        edge(client.player_uuid).profile_key, client.client_guid, min(seqs), max(seqs)
    )
    assert sorted(e.seq for e in player_events(rows)) == seqs


async def test_rejected_events_go_to_the_dlq_without_the_player_id(
    gateway: Gateway, nats_url: str
) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    async with connect(gateway.url) as ws:
        await ws.send(json.dumps({
            "type": "hello", "token": issue_token(player, secret=SECRET), "client_guid": guid,
            "schema": "1.0.0",
        }))  # fmt: skip
        assert json.loads(await ws.recv())["type"] == "welcome"
        events = [
            {"seq": 1, "name": "engage_enemy", "ts": 1, "props": {"enemy_id": "o", "tier": "boss"}},
            {
                "seq": 2,
                "name": "engage_enemy",
                "ts": 1,
                "props": {"enemy_id": "o", "tier": "mythic"},
            },
        ]
        await ws.send(
            json.dumps({"type": "analytics", "id": 7, "schema": "1.0.0", "events": events})
        )
        ack = json.loads(await ws.recv())
    assert ack["type"] == "ack" and ack["accepted"] == 1
    assert ack["rejected"] == [{
        "seq": 2, "code": "invalid_event",
        "detail": "props.tier: 'mythic' is not one of ['normal', 'elite', 'boss']",
    }]  # fmt: skip
    dlq = await stored(nats_url, guid, messages.DLQ_SUBJECT)
    assert len(dlq) == 1
    entry = json.loads(dlq[0][1])
    assert entry["source"] == "gateway" and entry["reason"] == "invalid_event"
    assert player not in dlq[0][1].decode() and len(entry["analytics_player_id"]) == 64


async def test_metrics_and_probes(gateway: Gateway) -> None:
    def get(path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{gateway.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, ""

    assert (await asyncio.to_thread(get, "/readyz"))[0] == 200
    status, text = await asyncio.to_thread(get, "/metrics")
    assert status == 200
    for name in (
        "analytics_queue_depth", "analytics_drop_total", "analytics_events_received_total",
        "analytics_events_rejected_total", "analytics_publish_latency_seconds",
        "analytics_sessions_active", "process_cpu_seconds_total",
    ):  # fmt: skip
        assert name in text


async def test_shutdown_acks_pending_and_closes_with_1001(nats_url: str) -> None:
    gw = Gateway(gateway_settings(nats_url))
    await gw.start()
    client = new_client(gw)
    connector = WebSocketConnector(client, gw.url)
    connector.start()
    await asyncio.wait_for(connector.welcomed.wait(), 5)
    play(client, 20)
    await asyncio.sleep(0.3)
    await gw.drain_and_stop()
    await asyncio.sleep(0.2)
    await connector.stop(flush_timeout_s=0)
    assert 1001 in connector.close_codes
    stored_seqs = {e.seq for e in player_events(await stored(nats_url, client.player_uuid))}
    assert client.stats.events_acked == len(stored_seqs) > 0  # nothing acked is missing
    # Whatever was not acked is still held by the client for the next gateway.
    assert client.stats.buffered == (
        len(stored_seqs) + client.buffered_events + client.pending_events
    )


async def test_sessions_gauge_counts_connected_clients(gateway: Gateway) -> None:
    clients = [new_client(gateway) for _ in range(2)]
    connectors = [WebSocketConnector(c, gateway.url) for c in clients]
    for connector in connectors:
        connector.start()
    await asyncio.wait_for(asyncio.gather(*(c.welcomed.wait() for c in connectors)), 5)
    assert gateway.sessions == 2
    for connector in connectors:
        await connector.stop()
    for _ in range(50):
        if gateway.sessions == 0:
            break
        await asyncio.sleep(0.02)
    assert gateway.sessions == 0
    assert collections.Counter(c.close_codes[-1] for c in connectors) == {1000: 2}


async def test_group_commit_bundles_many_sessions_into_one_write(nats_url: str) -> None:
    """Envelopes of many sessions arriving together share JetStream writes; every client is
    acked only once its write is stored, and every event is in the stream exactly once."""
    async with running_gateway(nats_url, group_window_s=0.05) as gw:
        players = [str(uuid.uuid4()) for _ in range(12)]
        sockets = [await connect(gw.url) for _ in players]
        try:
            for ws, player in zip(sockets, players, strict=True):
                await ws.send(json.dumps({
                    "type": "hello", "token": issue_token(player, secret=SECRET),
                    "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
                }))  # fmt: skip
                assert json.loads(await ws.recv())["type"] == "welcome"
            events = [
                {"seq": s, "name": "encounter_end", "ts": 1_700_000_000_000 + s,
                 "props": {"encounter_id": f"e{s}", "tier": "boss", "outcome": "win"}}
                for s in (1, 2, 3)
            ]  # fmt: skip
            frame = json.dumps({"type": "analytics", "id": 1, "schema": "1.0.0", "events": events})
            await asyncio.gather(*(ws.send(frame) for ws in sockets))
            replies = [json.loads(await ws.recv()) for ws in sockets]
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    assert replies == [{"type": "ack", "id": 1, "accepted": 3}] * len(players)
    ids: set[str | None] = set()
    for player in players:  # acked means stored: no waiting needed
        rows = await stored(nats_url, player)
        assert sorted(e.seq for e in player_events(rows)) == [1, 2, 3]
        ids.update(ident for ident, _ in rows)
    assert len(ids) < len(players), "no two sessions shared a JetStream write"
    assert any(ident and ident.startswith("bundle-") for ident in ids)
