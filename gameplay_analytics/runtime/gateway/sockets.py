"""What a session needs of its socket: the part of a websockets `ServerConnection` it uses.

The standalone gateway passes its own connections; an embedding game server passes an
`AnalyticsChannel` (embed.py) that rides on the game's socket. Both end with `ConnectionClosed`.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Abortable", "FrameSocket"]


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
