"""The gateway's session on a game server's own WebSocket: analytics and game frames share one
connection, and the player is the one the game server already authenticated.

    gateway = Gateway(settings)
    await gateway.start(listen=False)            # NATS, ingest worker, config, no listener

    async def game_route(ws):                     # websockets; Starlette: websocket.send_text
        player = await authenticate(ws)           # the game's own login
        async with attach(gateway, send=ws.send, player_uuid=player) as analytics:
            async for message in ws:
                if not analytics.offer(message):  # hello / analytics / telemetry: taken
                    await handle_game_frame(message)

Frames reach the same intake, acks and backpressure as on the standalone gateway (which is
this module's other user: it hands its own connections to `Session` directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from websockets.exceptions import ConnectionClosedOK

from gameplay_analytics.runtime.gateway.auth import Principal
from gameplay_analytics.runtime.gateway.session import Hub, Session

__all__ = ["ANALYTICS_TYPES", "AnalyticsChannel", "attach"]

log = logging.getLogger(__name__)

ANALYTICS_TYPES = frozenset({"hello", "analytics", "telemetry"})
"""Frame types the analytics session takes; everything else stays with the game."""
MAX_QUEUED_FRAMES = 256
"""Frames offered and not yet read by the session before the channel gives up on it."""
_CLOSE_TIMEOUT_S = 5.0


class _Kind(msgspec.Struct):
    type: str = ""


_peek = msgspec.json.Decoder(_Kind)


def frame_type(data: str | bytes) -> str | None:
    """The `type` of a JSON frame, without decoding the rest; None when it is not one."""
    try:
        return _peek.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class AnalyticsChannel:
    """The analytics half of one game connection, as the session's `FrameSocket`.

    The game offers every frame it reads; `send` is the game's own send of a text frame. When
    the session closes the channel (a bad `hello`) the game's socket stays open: analytics
    stops for it, the game goes on. `closed_with` holds the close code the gateway chose.
    """

    def __init__(self, send: Callable[[str], Awaitable[Any]], *, remote_address: Any = None):
        self._send = send
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._ended = False
        self.remote_address = remote_address
        self.closed_with: tuple[int, str] | None = None

    @property
    def transport(self) -> AnalyticsChannel:
        return self  # `abort()` below, as the session's outbox calls it

    def offer(self, data: str | bytes) -> bool:
        """Hand over one frame the game read: True when it was for analytics (taken)."""
        if frame_type(data) not in ANALYTICS_TYPES:
            return False
        if self._ended:
            return True  # analytics closed for this connection; the frame is dropped
        if self._inbox.qsize() >= MAX_QUEUED_FRAMES:
            log.warning("analytics session stopped reading its frames: ending it")
            self.abort()
            return True
        self._inbox.put_nowait(data)
        return True

    def abort(self) -> None:
        """End the session (the game's connection is not touched)."""
        if not self._ended:
            self._ended = True
            self._inbox.put_nowait(None)

    # -- FrameSocket -----------------------------------------------------------------------

    async def recv(self, decode: bool | None = None) -> str | bytes:
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)  # every later recv ends too
            raise ConnectionClosedOK(None, None)
        return item

    async def send(self, message: bytes, *, text: bool | None = None) -> None:
        if self._ended:
            raise ConnectionClosedOK(None, None)
        await self._send(message.decode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)
        self.abort()


@contextlib.asynccontextmanager
async def attach(
    hub: Hub,
    *,
    send: Callable[[str], Awaitable[Any]],
    player_uuid: str | None,
    shard: str | None = None,
    region: str | None = None,
    remote_address: Any = None,
) -> AsyncIterator[AnalyticsChannel]:
    """Serve an analytics session on a game connection for as long as the block runs.

    `player_uuid` is the player the game server authenticated (its `hello` token is then not
    read); None makes the session verify the `hello` token as the standalone gateway does.
    Leaving the block (the game's socket closed) ends the session: unacked envelopes are the
    client's to resend, as after any disconnect.
    """
    channel = AnalyticsChannel(send, remote_address=remote_address)
    principal = (
        Principal(player_uuid=player_uuid.lower(), shard=shard, region=region)
        if player_uuid is not None
        else None
    )
    task = asyncio.create_task(
        Session(channel, hub, player=principal).serve(), name="embedded-analytics-session"
    )
    try:
        yield channel
    finally:
        channel.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, _CLOSE_TIMEOUT_S)
