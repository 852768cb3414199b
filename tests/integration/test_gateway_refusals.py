"""Every refusal of PROTOCOL.md §1 gets its answer, and the gateway keeps serving others."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime.gateway import Gateway, issue_token
from tests.integration.test_gateway_e2e import SECRET, running_gateway, stored

pytestmark = pytest.mark.integration

BOSS = {"name": "engage_enemy", "ts": 1, "props": {"enemy_id": "o", "tier": "boss"}}


@pytest.fixture
async def gateway(nats_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(nats_url, hello_timeout_s=0.5) as gw:
        yield gw


async def hello(
    ws: ClientConnection, player: str | None = None, *, token: str | None = None, **extra: Any
) -> dict[str, Any]:
    player = player or str(uuid.uuid4())
    frame = {
        "type": "hello", "token": token or issue_token(player, secret=SECRET),
        "client_guid": str(uuid.uuid4()), "schema": "1.0.0", **extra,
    }  # fmt: skip
    await ws.send(json.dumps(frame))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


def envelope(ident: int, first_seq: int, count: int = 1, schema: str = "1.0.0") -> str:
    events = [{"seq": first_seq + i, **BOSS} for i in range(count)]
    return json.dumps({"type": "analytics", "id": ident, "schema": schema, "events": events})


async def still_serving(gw: Gateway) -> None:
    """A well-behaved client gets its ack: the gateway survived whatever came before."""
    async with connect(gw.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(envelope(1, 1, 3))
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 3}


async def test_expired_token_is_unauthorized_4401(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        player = str(uuid.uuid4())
        reply = await hello(ws, token=issue_token(player, secret=SECRET, ttl_s=-10))
        assert reply == {"type": "error", "code": "unauthorized", "detail": "token expired"}
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401
    await still_serving(gateway)


async def test_analytics_before_hello_is_unauthorized(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        await ws.send(envelope(3, 1))
        reply = json.loads(await ws.recv())
        assert (reply["code"], reply["id"]) == ("unauthorized", 3)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401


async def test_missing_hello_times_out(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        reply = json.loads(await ws.recv())
        assert reply["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4408


async def test_wrong_schema_version(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(envelope(9, 1, schema="0.9.0"))
        reply = json.loads(await ws.recv())
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "analytics_version", 9)
        await ws.send(envelope(10, 2))  # the session goes on
        assert json.loads(await ws.recv())["type"] == "ack"
    async with connect(gateway.url) as ws:  # announced in hello: welcome, then the refusal
        assert (await hello(ws, schema="7.0.0"))["type"] == "welcome"
        assert json.loads(await ws.recv())["code"] == "analytics_version"
    await still_serving(gateway)


async def test_oversized_frame_closes_1009(gateway: Gateway) -> None:
    async with connect(gateway.url, max_size=None) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send("x" * (2 * 1024 * 1024))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    await still_serving(gateway)


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xff\xfe garbage", "{not json", '{"type": "teleport"}', '{"type": "analytics"}',
     '[1, 2, 3]', '{"type": "analytics", "id": 1, "schema": "1.0.0", "events": {"a": 1}}'],
)  # fmt: skip
async def test_garbage_is_bad_request_and_the_session_survives(
    gateway: Gateway, garbage: str | bytes
) -> None:
    async with connect(gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(garbage)
        reply = json.loads(await ws.recv())
        assert (reply["type"], reply["code"]) == ("error", "bad_request") and reply["detail"]
        await ws.send(envelope(2, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
        await ws.send('{"type": "input", "keys": "wasd"}')  # ignored without a reply
        await ws.send(envelope(3, 2))
        assert json.loads(await ws.recv())["id"] == 3


async def test_too_many_events_is_bad_request(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(envelope(4, 1, count=501))
        reply = json.loads(await ws.recv())
        assert (reply["code"], reply["id"]) == ("bad_request", 4)


async def test_flood_is_rate_limited(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        for i in range(100):  # 100 frames within one second
            await ws.send(envelope(i, i * 10))
            await asyncio.sleep(0.01)
        replies = [json.loads(await ws.recv()) for _ in range(100)]
    limited = [r for r in replies if r["type"] == "error" and r["code"] == "rate_limited"]
    acked = [r for r in replies if r["type"] == "ack"]
    assert len(limited) + len(acked) == 100
    assert 10 <= len(acked) <= 25 and len(limited) >= 75  # ≈ 10/s plus the burst
    await still_serving(gateway)


async def test_opted_out_session_stores_nothing(gateway: Gateway, nats_url: str) -> None:
    player = str(uuid.uuid4())
    async with connect(gateway.url) as ws:
        assert (await hello(ws, player, consent={"analytics": False}))["type"] == "welcome"
        await ws.send(envelope(5, 1, 4))
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 5, "accepted": 0, "dropped": 4}
    assert await stored(nats_url, player) == []
    await still_serving(gateway)


async def test_social_events_dropped_without_social_consent(
    gateway: Gateway, nats_url: str
) -> None:
    player = str(uuid.uuid4())
    async with connect(gateway.url) as ws:
        assert (await hello(ws, player, consent={"social": False}))["type"] == "welcome"
        events = [
            {"seq": 1, "name": "chat_message", "ts": 1, "props": {"length": 3}},
            {"seq": 2, "name": "session_start", "ts": 1, "props": {}},
        ]
        await ws.send(
            json.dumps({"type": "analytics", "id": 1, "schema": "1.0.0", "events": events})
        )
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 1, "dropped": 1}
    rows = await stored(nats_url, player)
    assert len(rows) == 1 and b"chat_message" not in rows[0][1]


async def test_wrong_path_is_404(gateway: Gateway) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as caught:
        async with connect(gateway.url.replace("/ws", "/other")):
            pass
    assert caught.value.response.status_code == 404
