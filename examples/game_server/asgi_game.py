"""The same example game server on ASGI (Starlette + uvicorn): analytics on the game's `/ws`.

Run: uvicorn --factory --app-dir examples/game_server asgi_game:make_app  (the `embed` extra).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets_game import UNAUTHORIZED, Game  # beside this file (uvicorn --app-dir)

from gameplay_analytics.runtime.gateway import Gateway, GatewaySettings
from gameplay_analytics.runtime.gateway.embed import attach


def create_app(game: Game, settings: GatewaySettings) -> Starlette:
    """A Starlette app whose `/ws` carries game frames and analytics for `game`'s players."""
    gateway = Gateway(settings)

    async def game_socket(websocket: WebSocket) -> None:
        player = game.tickets.get(websocket.query_params.get("ticket", ""))
        if player is None:
            await websocket.close(UNAUTHORIZED)
            return
        await websocket.accept()
        async with attach(gateway, send=websocket.send_text, player_uuid=player) as analytics:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                message = received.get("text") or received.get("bytes") or ""
                if analytics.offer(message):
                    continue
                reply = game.on_frame(message)
                if reply is not None:
                    await websocket.send_text(reply)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start(listen=False)
        try:
            yield
        finally:
            await gateway.drain_and_stop()

    return Starlette(routes=[WebSocketRoute("/ws", game_socket)], lifespan=lifespan)


def make_app() -> Starlette:
    """For `uvicorn --factory`: settings from the GAMEPLAY_ANALYTICS_* environment."""
    return create_app(Game(), GatewaySettings())
