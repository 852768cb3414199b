"""What a session needs of its socket: the part of a websockets `ServerConnection` it uses.

The standalone gateway passes its own connections; an embedding game server passes an
`AnalyticsChannel` (embed.py) that rides on the game's socket. Both end with `ConnectionClosed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from websockets.asyncio.connection import Connection
from websockets.protocol import State

__all__ = ["Abortable", "FrameSocket", "direct_writer"]


class Abortable(Protocol):
    def abort(self) -> None: ...


class FrameSocket(Protocol):
    """Text frames in and out; `recv` raises `websockets.exceptions.ConnectionClosed` at the end."""

    @property
    def remote_address(self) -> Any: ...

    @property
    def transport(self) -> Abortable: ...

    async def recv(self, decode: bool | None = None) -> str | bytes: ...

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


def direct_writer(ws: FrameSocket) -> Callable[[bytes], bool] | None:
    """For a websockets connection: a function that writes one text frame now, without a task,
    an await or `send`'s context manager, when the connection is open, no fragmented message
    is being sent and its transport is not paused (then it returns True); otherwise it writes
    nothing and returns False, and the caller awaits `send` (which waits for the drain).
    Other sockets (an embedding game server's channel): None.

    One frame costs one `transport.write` either way (a reply per envelope, PROTOCOL.md §1);
    what this saves is the writer task's wake-up per reply (issue 17's profile)."""
    if not isinstance(ws, Connection):
        return None
    conn, protocol = ws, ws.protocol

    def write(data: bytes) -> bool:
        if protocol.state is not State.OPEN or conn.paused or conn.send_in_progress is not None:
            return False
        protocol.send_text(data)
        conn.send_data()
        return True

    return write
