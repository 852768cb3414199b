"""An example game server (websockets) with analytics on its own `/ws`: one socket carries the
game's `input`/`state` frames and the SDK's analytics, and the player is the game's own login.

Run: python examples/game_server/websockets_game.py  (NATS from GAMEPLAY_ANALYTICS_NATS_URL;
the game's "login" here is a ticket table filled by `/login?player=UUID` — a stand-in for yours).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve

from gameplay_analytics.runtime.gateway import Gateway, GatewaySettings
from gameplay_analytics.runtime.gateway.embed import attach

UNAUTHORIZED = 4401


class Game:
    """The game's side: a login table and a frame handler that answers `input` with `state`."""

    def __init__(self) -> None:
        self.tickets: dict[str, str] = {}  # game session ticket → player UUID
        self.inputs = 0

    def login(self, player_uuid: str) -> str:
        ticket = uuid.uuid4().hex
        self.tickets[ticket] = player_uuid
        return ticket

    def on_frame(self, message: str | bytes) -> str | None:
        try:
            frame = json.loads(message)
        except ValueError:
            return None  # not JSON: a real game would count it and move on
        if not isinstance(frame, dict) or frame.get("type") != "input":
            return None
        self.inputs += 1
        return json.dumps({"type": "state", "tick": frame.get("tick"), "ok": True})


async def start(game: Game, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> Server:
    """The game's WebSocket server; analytics rides on it through `attach`."""

    async def handler(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        player = game.tickets.get(query.get("ticket", [""])[0])
        if player is None:
            await ws.close(UNAUTHORIZED, "log in first")
            return
        async with attach(
            gateway, send=ws.send, player_uuid=player, remote_address=ws.remote_address
        ) as analytics:
            async for message in ws:
                if analytics.offer(message):
                    continue  # hello / analytics / telemetry: the gateway's session has it
                reply = game.on_frame(message)
                if reply is not None:
                    await ws.send(reply)

    return await serve(handler, host, port, compression=None)


async def main() -> None:
    gateway = Gateway(GatewaySettings())
    await gateway.start(listen=False)  # NATS, ingest worker, config; no listener of its own
    game = Game()
    server = await start(game, gateway, port=8765)
    ticket = game.login(str(uuid.uuid4()))
    print(f"game server on ws://127.0.0.1:8765/ws?ticket={ticket}")
    try:
        await server.serve_forever()
    finally:
        await gateway.drain_and_stop()


if __name__ == "__main__":
    asyncio.run(main())
