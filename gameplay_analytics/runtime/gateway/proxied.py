"""The gateway's WebSocket connections behind a PROXY-protocol load balancer
(`GAMEPLAY_ANALYTICS_PROXY_PROTOCOL`): a connection from a trusted proxy must start with a
PROXY v1/v2 header, whose source address then is the connection's `remote_address`; any
other peer's bytes are WebSocket from the first one, so nobody else can name an address.

The header is read in `data_received`, before websockets sees a byte; a trusted peer that
sends none (or a broken one) is dropped, since its traffic can only be misread, and
counted in `analytics_sessions_aborted_total{reason="proxy_header"}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection

from gameplay_analytics.runtime.gateway import clientaddr, metrics, proxyproto
from gameplay_analytics.runtime.gateway.clientaddr import Network

__all__ = ["ABORT_REASON", "connection_class"]

ABORT_REASON = "proxy_header"  # analytics_sessions_aborted_total{reason=…}

log = logging.getLogger(__name__)


class _ProxiedConnection(ServerConnection):
    trusted: tuple[Network, ...] = ()

    _pending: bytearray | None = None
    _source: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if peer and clientaddr.is_trusted(str(peer[0]), self.trusted):
            self._pending = bytearray()  # a header comes first

    def data_received(self, data: bytes) -> None:
        if self._pending is None:
            super().data_received(data)
            return
        self._pending += data
        try:
            header = proxyproto.parse(bytes(self._pending[: proxyproto.MAX_HEADER_BYTES]))
        except proxyproto.BadHeader as err:
            log.warning("dropping a connection from a trusted proxy: %s", err)
            metrics.SESSIONS_ABORTED.labels(ABORT_REASON).inc()
            self._pending = None
            self.transport.abort()
            return
        if header is None:
            return  # more of the header to come
        rest = bytes(self._pending[header.length :])
        self._pending = None
        if header.source is not None:
            self._source = (header.source, header.source_port)
        if rest:
            super().data_received(rest)

    @property
    def remote_address(self) -> Any:
        return self._source if self._source is not None else super().remote_address


def connection_class(trusted: Sequence[Network]) -> type[ServerConnection]:
    """A ServerConnection class that reads PROXY headers from `trusted` peers."""
    return type("ProxiedConnection", (_ProxiedConnection,), {"trusted": tuple(trusted)})
