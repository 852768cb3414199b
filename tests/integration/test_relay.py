"""The relay of docs/relay.md, driven by a client written from that page alone: a raw
WebSocket speaking relay v1 for two players at once; their events are stored once each, per
player, with the acks routed back by `conn`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime.gateway.auth import issue_service_token
from tests.integration.test_gateway_e2e import running_gateway, stored

pytestmark = pytest.mark.integration

RELAY_SECRET = "relay-secret-of-the-game-servers-32b"


def relay_url(ws_url: str) -> str:
    return ws_url.rsplit("/", 1)[0] + "/relay"


def client_frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def relayed(conn: str, player: str, frame: str) -> str:
    return json.dumps({"type": "relay", "conn": conn, "player": player, "frame": frame})


async def replies(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    got = []
    async with asyncio.timeout(20):
        while len(got) < count:
            got.append(json.loads(await ws.recv()))
    return got


async def test_a_game_server_relays_two_players_analytics(nats_url: str) -> None:
    players = {"p1": str(uuid.uuid4()), "p2": str(uuid.uuid4())}
    async with running_gateway(nats_url, relay_secret=RELAY_SECRET) as gw:
        async with connect(relay_url(gw.url)) as ws:
            token = issue_service_token("go-game-server", secret=RELAY_SECRET)
            await ws.send(json.dumps({"type": "relay_hello", "version": 1, "token": token}))
            assert json.loads(await ws.recv()) == {
                "type": "relay_welcome", "version": 1, "service": "go-game-server",
            }  # fmt: skip
            for conn, player in players.items():
                hello = client_frame(
                    "hello", token="", client_guid=str(uuid.uuid4()), schema="1.0.0"
                )
                await ws.send(relayed(conn, player, hello))
            welcomes = await replies(ws, 2)
            assert {w["conn"] for w in welcomes} == {"p1", "p2"}
            assert all(json.loads(w["frame"])["type"] == "welcome" for w in welcomes)
            for n, (conn, player) in enumerate(players.items()):
                events = [
                    {"seq": n * 10 + i, "name": "skill_rank_up", "ts": 1759320000000 + i,
                     "props": {"skill": "fire", "rank": i + 1}}
                    for i in range(3)
                ]  # fmt: skip
                envelope = client_frame("analytics", id=1, schema="1.0.0", events=events)
                await ws.send(relayed(conn, player, envelope))
                # the game's own input frames may share the stream: ignored
                await ws.send(relayed(conn, player, client_frame("input", keys=["w"])))
            acks = {r["conn"]: json.loads(r["frame"]) for r in await replies(ws, 2)}
            assert acks == {c: {"type": "ack", "id": 1, "accepted": 3} for c in players}
            # a conn is one player's for its life
            await ws.send(relayed("p1", players["p2"], client_frame("telemetry", rtt_ms=5)))
            [error] = await replies(ws, 1)
            assert error["type"] == "error" and error["code"] == "bad_request"
            for conn in players:
                await ws.send(json.dumps({"type": "relay_close", "conn": conn}))
        for player in players.values():
            found = await stored(nats_url, player)
            events = [e for _, payload in found for e in json.loads(payload).get("events", [])]
            assert len(events) == 3, found


async def test_a_player_token_cannot_open_a_relay(nats_url: str) -> None:
    from gameplay_analytics.runtime.gateway import issue_token
    from tests.integration.test_gateway_e2e import SECRET

    async with (
        running_gateway(nats_url, relay_secret=RELAY_SECRET) as gw,
        connect(relay_url(gw.url)) as ws,
    ):
        token = issue_token(str(uuid.uuid4()), secret=SECRET)
        await ws.send(json.dumps({"type": "relay_hello", "version": 1, "token": token}))
        assert json.loads(await ws.recv())["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_no_relay_without_a_relay_secret(nats_url: str) -> None:
    from websockets.exceptions import InvalidStatus

    async with running_gateway(nats_url) as gw:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(relay_url(gw.url)):
                pass
        assert refused.value.response.status_code == 404
