"""Pseudonymisation at the edge, end to end (PROTOCOL.md §3): the local stack (real gateway
behind a trusted proxy, real aggregators, nats-server, Postgres) takes players with known
UUIDs and forwarded client addresses; then EVERY message of the JetStream stream, events and
DLQ, is read back raw and holds no raw UUID (dashed, bare hex, any case) and no IP, the
shipped privacy scan agrees over the stream, the stores and the processes' logs, and a raw
UUID planted in the stream is found by it."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from websockets.asyncio.client import connect

from gameplay_analytics.contract import messages
from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.stack import LocalStack, StackConfig
from gameplay_analytics.runtime import privacy_scan
from gameplay_analytics.runtime.gateway import issue_token
from tests.integration.support import NOW_MS, encode_batch, event
from tests.integration.support import raw_batch as legacy_batch

pytestmark = pytest.mark.integration

SECRET = "edge-privacy-test-secret-edge-privacy-test-secret"
# Global addresses (private ones are never geolocated); the stack's client is the "proxy".
ADDRESSES = ["81.2.69.142", "81.2.69.7", "2a02:c7f::42", "93.184.216.34"]


@pytest.fixture(scope="module")
async def stack(geoip_db: Path) -> AsyncIterator[LocalStack]:
    root = Path(tempfile.mkdtemp(prefix="ga-edge-"))
    env = {
        "GAMEPLAY_ANALYTICS_TRUSTED_PROXIES": "127.0.0.0/8,::1",
        "GAMEPLAY_ANALYTICS_GEOIP_DB": str(geoip_db),
        "GAMEPLAY_ANALYTICS_SALT_SECRET": "edge-privacy-salt",
        "GAMEPLAY_ANALYTICS_LOG_LEVEL": "DEBUG",  # the most the logs can say
    }
    local = LocalStack(StackConfig(data_dir=root, jwt_secret=SECRET, extra_env=env))
    await asyncio.to_thread(local.start)
    try:
        yield local
    finally:
        await asyncio.to_thread(local.stop)


def forms(player: str) -> list[bytes]:
    """Every way a raw UUID can be written: dashed or bare hex, lower or upper case (the
    search is on lower-cased bytes)."""
    return [player.lower().encode(), player.replace("-", "").lower().encode()]


async def play(url: str, player: str, address: str, envelope_id: int) -> dict[str, Any]:
    """One session through the proxy: kept events, a refused one (the gateway's DLQ), one
    whose identifier props carry the player's own UUID and address, one stamped a day
    ahead (the aggregator's DLQ: clock_skew), and a telemetry sample."""
    boss = {"tier": "boss"}  # every event here is kept at rate 1.0 (PROTOCOL.md §2)
    events = [
        {"seq": 1, "name": "session_start", "ts": NOW_MS, "props": {}},
        {"seq": 2, "name": "engage_enemy", "ts": NOW_MS,
         "props": {"enemy_id": player.upper(), **boss}},
        {"seq": 3, "name": "encounter_end", "ts": NOW_MS,
         "props": {"encounter_id": address, "outcome": "win", **boss}},
        {"seq": 4, "name": "engage_enemy", "ts": NOW_MS,
         "props": {"enemy_id": "o", "tier": player}},
        {"seq": 5, "name": "skill_rank_up", "ts": NOW_MS + 86_400_000,
         "props": {"skill": "fire", "rank": 2}},
        {"seq": 6, "name": "session_end", "ts": NOW_MS + 1, "props": {"reason": "logout"}},
    ]  # fmt: skip
    headers = {"X-Forwarded-For": f"6.6.6.6, {address}"}  # a forged hop, then the proxy's
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({
            "type": "hello", "token": issue_token(player, secret=SECRET),
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
        }))  # fmt: skip
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps({"type": "telemetry", "rtt_ms": 30, "snapshot_bytes": 900}))
        await ws.send(json.dumps(
            {"type": "analytics", "id": envelope_id, "schema": "1.0.0", "events": events}
        ))  # fmt: skip
        while True:
            reply: dict[str, Any] = json.loads(await ws.recv())
            if reply["type"] == "ack":
                return reply


async def every_message(nats_url: str, start: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """(subject, payload, headers) of every message in the stream from `start`."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            ">", stream=messages.STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                ack_policy=AckPolicy.NONE, inactive_threshold=10,
            ),
        )  # fmt: skip
        found = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            found += [(m.subject, m.data, dict(m.headers or {})) for m in msgs]
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def stream_end(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().stream_info(messages.STREAM)).state.last_seq)
    finally:
        await nc.close()


async def stored_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM analytics_events"))
    finally:
        await conn.close()


def stack_ports(stack: LocalStack) -> set[int]:
    assert stack.gateway is not None
    return {
        stack.nats.port, stack.nats.monitor_port, stack.postgres.port, stack.ws_port,
        stack.gateway.metrics_port, *(a.metrics_port for a in stack.aggregators),
    }  # fmt: skip


async def test_no_raw_uuid_or_ip_in_any_message_store_or_log(stack: LocalStack) -> None:
    admin = stack.nats_url_as(natsauth.ADMIN)
    start = await stream_end(admin) + 1
    players = [str(uuid.uuid4()) for _ in ADDRESSES]
    acks = await asyncio.gather(
        *(
            play(stack.ws_url, p, a, i)
            for i, (p, a) in enumerate(zip(players, ADDRESSES, strict=True))
        )
    )
    for ack in acks:  # seq 4 refused by its schema; seq 5 the aggregator's to refuse
        assert ack["accepted"] == 5 and [r["seq"] for r in ack["rejected"]] == [4]
    deadline = time.monotonic() + 30
    while await stored_rows(stack.postgres.dsn) < 4 * len(players):
        assert time.monotonic() < deadline, "the aggregator did not store the events"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the aggregator's own DLQ entries (clock_skew) follow its batch

    found = await every_message(admin, start)
    subjects = {subject for subject, _, _ in found}
    assert subjects == {messages.EVENTS_SUBJECT, messages.DLQ_SUBJECT}
    reasons = sorted(
        json.loads(data)["reason"] for subject, data, _ in found if subject == messages.DLQ_SUBJECT
    )
    assert reasons == ["clock_skew"] * len(players) + ["invalid_event"] * len(players)
    for subject, data, headers in found:
        raw = (data + json.dumps(headers).encode()).lower()
        for player in players:
            assert not any(form in raw for form in forms(player)), (subject, data[:300])
        for address in [*ADDRESSES, "6.6.6.6", "127.0.0.1"]:
            assert address.encode() not in raw, (subject, address, data[:300])
    batches = [b for s, d, _ in found if s == messages.EVENTS_SUBJECT
               for b in messages.decode_batches(d)]  # fmt: skip
    assert {(b.country, b.geo_region) for b in batches} == {("GB", "ENG"), ("DE", "BE"),
                                                            (None, None)}  # fmt: skip
    assert all(len(pid) == 64 for b in batches for pid in b.player_ids.values())

    # The shipped scan: the stream (both subjects), Postgres, the warm store and the logs.
    logs = sorted((stack.config.data_dir.resolve() / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"gateway", "aggregator-0"}
    report = await privacy_scan.scan_all(  # as the privacy role: what it may read, it reads
        dsn=stack.postgres.dsn, warehouse_root=stack.warehouse_root,
        nats_url=stack.nats_url_as(Role.PRIVACY),
        log_paths=logs, player_uuids=players, server_ports=stack_ports(stack),
        stream_start_seq=start,
    )  # fmt: skip
    print(report.line("edge"))
    assert report.findings == [], "\n".join(f.redacted() for f in report.findings)
    assert report.event_batches >= len(players) and report.dlq_messages == 2 * len(players)
    for log in logs:  # and, beyond the scan's IP rules, no client address at all
        text = log.read_text(errors="replace")
        assert not any(a in text for a in ADDRESSES), log.name


async def test_the_scan_finds_a_raw_uuid_planted_in_the_stream(stack: LocalStack) -> None:
    """A format-1 message (what an older gateway published) planted in the stream: the scan
    names it; the aggregator, holding no salt, dead-letters it without the raw UUID."""
    admin = stack.nats_url_as(natsauth.ADMIN)
    start = await stream_end(admin) + 1
    player = str(uuid.uuid4())
    nc = await nats.connect(admin)
    try:
        planted = encode_batch(legacy_batch(player, str(uuid.uuid4()), [event(1)]))
        await nc.jetstream().publish(messages.EVENTS_SUBJECT, planted)
    finally:
        await nc.close()
    report = await privacy_scan.scan_all(
        dsn=None, warehouse_root=None, nats_url=stack.nats_url_as(Role.PRIVACY), log_paths=[],
        player_uuids=[player], stream_start_seq=start,
    )  # fmt: skip
    assert {(f.where, f.what) for f in report.findings} == {
        ("stream:events", "player_uuid"), ("stream:events", "ip"),
    }  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        dlq = [d for s, d, _ in await every_message(admin, start)
               if s == messages.DLQ_SUBJECT]  # fmt: skip
        if dlq or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert [json.loads(d)["reason"] for d in dlq] == [messages.LEGACY_RAW_IDENTIFIER]
    assert player.encode() not in dlq[0] and b"81.2.69.142" not in dlq[0]
