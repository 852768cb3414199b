"""What a session sends back: its outbox and writer task, and the token bucket of its limits.

Replies leave in the order they were decided: written at once when nothing is queued before
them and the socket takes them (`sockets.direct_writer`), else through the session's writer
task, which awaits the socket's drain. A client
that leaves `max_frames` replies unread is not reading at all (its socket stays full): the
connection is aborted rather than letting replies pile up in memory. Its unacked envelopes
come back after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from websockets.exceptions import ConnectionClosed

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.errors import ErrorCode
from gameplay_analytics.runtime.gateway import metrics
from gameplay_analytics.runtime.gateway.sockets import FrameSocket, direct_writer

__all__ = ["Outbox", "TokenBucket"]

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate` per second, bursts up to `rate` (at least one); the caller passes the time."""

    __slots__ = ("_capacity", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._last = now

    def take(self, now: float) -> bool:
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Outbox:
    """The ordered replies of one connection and the task that writes them."""

    def __init__(
        self, ws: FrameSocket, *, max_frames: int, drain_timeout_s: float, name: str
    ) -> None:
        self._ws = ws
        self._max_frames = max_frames
        self._drain_timeout_s = drain_timeout_s
        self._name = name
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._choked = False
        self._writer: asyncio.Task[None] | None = None
        self._direct = direct_writer(ws)
        self._writing = False  # the writer task holds a reply it has not finished sending

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"session-writer-{self._name}")

    def qsize(self) -> int:
        """Replies queued and not yet written."""
        return self._queue.qsize()

    def send(self, data: bytes) -> None:
        """Write one encoded reply, or queue it behind the ones waiting (or abort a connection
        that reads none)."""
        direct = self._direct
        if direct is not None and not self._writing and self._queue.empty() and direct(data):
            return
        if self._queue.qsize() < self._max_frames:
            self._queue.put_nowait(data)
            return
        if not self._choked:
            self._choked = True
            log.warning("session %s does not read its replies: aborting it", self._name)
            metrics.SESSIONS_ABORTED.labels("replies_unread").inc()
            self._ws.transport.abort()

    def error(
        self,
        code: ErrorCode,
        detail: str,
        frame_id: int | None = None,
        *,
        retry_after_ms: int | None = None,
    ) -> None:
        error = frames.Error(
            code=str(code), detail=detail, id=frame_id, retry_after_ms=retry_after_ms
        )
        self.send(frames.encode(error))

    async def flush(self) -> None:
        """Stop the writer after it sent everything queued so far."""
        self._queue.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), self._drain_timeout_s)

    async def refuse(
        self, code: ErrorCode, detail: str, close_code: int, frame_id: int | None = None
    ) -> None:
        """Send an error, then close the socket with `close_code`."""
        self.error(code, detail, frame_id)
        await self.flush()  # the error goes out before the close frame
        with contextlib.suppress(Exception):
            await self._ws.close(close_code, detail[:120])

    async def _write(self) -> None:
        ws = self._ws
        while True:
            data = await self._queue.get()
            if data is None:
                return
            self._writing = True
            try:
                await ws.send(data, text=True)
            except ConnectionClosed:
                return
            finally:
                self._writing = False
