"""A bundled WebSocket transport for games without a socket of their own.

Connects, sends `hello`, feeds replies to the client and sends what `poll()` returns, and
reconnects with capped exponential backoff; unacked envelopes are resent after each reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from gameplay_analytics.sdk.client import AnalyticsClient

__all__ = ["WebSocketConnector"]

log = logging.getLogger(__name__)


class WebSocketConnector:
    """Owns one connection at a time for `client`; `start()` it, `stop()` it."""

    def __init__(
        self,
        client: AnalyticsClient,
        url: str,
        *,
        open_timeout_s: float = 5.0,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`headers` go on every handshake (e.g. `X-Forwarded-For` from a relay or the load
        generator; the gateway heeds it only from a trusted proxy)."""
        self.client = client
        self.url = url
        self._headers = dict(headers or {})
        self._open_timeout = open_timeout_s
        self._backoff = (reconnect_min_s, reconnect_max_s)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.welcomed = asyncio.Event()

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="analytics-connector")
        return self._task

    async def stop(self, *, flush_timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until every event is acknowledged, then close. True when flushed."""
        flushed = await self.wait_idle(flush_timeout_s)
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return flushed

    async def wait_idle(self, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.client.idle:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def disconnect(self) -> None:
        """Drop the current connection abruptly (as a network failure would); the connector
        reconnects and resends what was not acknowledged."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping:
            try:
                await self._session()
                delay = self._backoff[0]
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as err:
                log.info("analytics connection lost (%s); retrying", type(err).__name__)
            except InvalidURI:
                log.error("analytics: invalid gateway URL %s", self.url)
                return
            if self._stopping:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(self._backoff[1], delay * 2)

    async def _session(self) -> None:
        client = self.client
        async with connect(
            self.url,
            open_timeout=self._open_timeout,
            compression=None,
            max_size=None,
            additional_headers=self._headers or None,
        ) as ws:
            self._ws = ws
            self.connections += 1
            try:
                await ws.send(client.on_connected(), text=True)
                sender = asyncio.create_task(self._send_loop(ws))
                try:
                    async for message in ws:
                        client.on_frame(message)
                        if client.welcomed:
                            self.welcomed.set()
                        if client.unauthorized is not None:
                            break
                finally:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await sender
            finally:
                self.close_codes.append(ws.close_code)
                self._ws = None
                self.welcomed.clear()
                client.on_disconnected()

    async def _send_loop(self, ws: ClientConnection) -> None:
        client = self.client
        while True:
            for frame in client.poll():
                await ws.send(frame, text=True)
            await asyncio.sleep(client.poll_delay(1.0 / (client.max_rate_hz * 2)))
