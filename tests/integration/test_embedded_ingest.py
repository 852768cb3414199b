"""The gateway's session embedded in a game server's own socket (runtime/gateway/embed.py):
the example game servers of examples/game_server/ (websockets and Starlette on uvicorn) carry
game `input`/`state` frames and the SDK's analytics on one connection; the player comes from
the game's login, events reach JetStream once and are acked, game frames reach the game."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime.gateway import Gateway
from gameplay_analytics.sdk import AnalyticsClient
from tests.integration.test_gateway_e2e import gateway_settings, stored

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "game_server"


def example(name: str) -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@contextlib.asynccontextmanager
async def websockets_game(nats_url: str) -> AsyncIterator[tuple[Any, str]]:
    module = example("websockets_game")
    gateway = Gateway(gateway_settings(nats_url))
    await gateway.start(listen=False)
    game = module.Game()
    server = await module.start(game, gateway)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield game, f"ws://127.0.0.1:{port}/ws"
    finally:
        server.close()
        await server.wait_closed()
        await gateway.drain_and_stop()


@contextlib.asynccontextmanager
async def asgi_game(nats_url: str) -> AsyncIterator[tuple[Any, str]]:
    uvicorn = pytest.importorskip("uvicorn", reason="the `embed` extra is not installed")
    module = example("asgi_game")
    game = example("websockets_game").Game()
    app = module.create_app(game, gateway_settings(nats_url))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield game, f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def play(ws: ClientConnection, client: AnalyticsClient, *, ticks: int) -> int:
    """The game client: input frames and analytics on one socket; returns state frames seen."""
    await ws.send(client.on_connected(), text=True)
    client.track("session_start")
    states = 0
    for tick in range(ticks):
        await ws.send(json.dumps({"type": "input", "tick": tick, "keys": ["w"]}))
        client.track("engage_enemy", enemy_id=f"orc_{tick}", tier="boss")
        client.telemetry(30.0 + tick, 1200)  # the game's telemetry tick, sent at ≤ 1 Hz
        if tick == ticks - 1:
            client.track("session_end", reason="logout")
        states += await pump(ws, client, 0.12)
    for _ in range(100):
        if client.idle:
            break
        states += await pump(ws, client, 0.1)
    return states


async def pump(ws: ClientConnection, client: AnalyticsClient, seconds: float) -> int:
    states = 0
    for frame in client.poll():
        await ws.send(frame, text=True)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = await ws.recv()
                if not client.on_frame(message):
                    assert json.loads(message)["type"] == "state"
                    states += 1
    return states


@pytest.mark.parametrize("server", [websockets_game, asgi_game], ids=["websockets", "asgi"])
async def test_game_frames_and_analytics_share_the_games_socket(nats_url: str, server: Any) -> None:
    player = str(uuid.uuid4())
    async with server(nats_url) as (game, url):
        client = AnalyticsClient(player_uuid=player, client_guid=uuid.uuid4(), token="")
        async with connect(f"{url}?ticket={game.login(player)}") as ws:
            states = await play(ws, client, ticks=5)
        assert client.idle, client.stats
        assert states == game.inputs == 5  # every input reached the game, and was answered
        assert client.stats.events_acked == 7
        assert client.stats.telemetry_sent >= 1 and client.stats.envelopes_refused == 0
        messages = await stored(nats_url, player)
        events = [e for _, payload in messages for e in json.loads(payload).get("events", [])]
        assert len(messages) >= 1
        tracked = [e for e in events if e["name"] != "snapshot_size"]  # telemetry samples aside
        assert len(tracked) == 7, messages[:1]


async def test_the_game_refuses_whom_it_did_not_log_in(nats_url: str) -> None:
    async with websockets_game(nats_url) as (_, url):
        async with connect(f"{url}?ticket=nope") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
