"""`/metrics`, `/healthz` and `/readyz` on a port of their own, for every runtime process.

A minimal asyncio HTTP/1.1 responder: no framework, no thread, every read bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["ProbeServer"]

_READ_TIMEOUT_S = 5.0


class ProbeServer:
    """Serves Prometheus metrics and health probes; `ready()` decides `/readyz`."""

    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        port: int,
        ready: Callable[[], bool],
        registry: CollectorRegistry = REGISTRY,
        reason: Callable[[], str | None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._ready = ready
        self._reason = reason  # why not ready, said in the /readyz body
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            path = head.split(b" ", 2)[1].split(b"?", 1)[0] if head.count(b" ") >= 2 else b""
            status, ctype, body = self._respond(path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _respond(self, path: bytes) -> tuple[str, str, bytes]:
        if path == b"/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path == b"/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == b"/readyz":
            if self._ready():
                return "200 OK", "text/plain", b"ready\n"
            why = self._reason() if self._reason is not None else None
            body = f"not ready: {why}\n" if why else "not ready\n"
            return "503 Service Unavailable", "text/plain", body.encode()
        return "404 Not Found", "text/plain", b"not found\n"
