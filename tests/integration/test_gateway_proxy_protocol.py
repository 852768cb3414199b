"""A real gateway behind a PROXY-protocol load balancer (GAMEPLAY_ANALYTICS_PROXY_PROTOCOL):
a trusted proxy's v1/v2 header names the client (the stored batch's country and region say
so: the address itself never leaves the gateway), a trusted proxy without a header is
dropped, and an untrusted peer cannot name an address with one."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidMessage

from gameplay_analytics.contract import messages
from gameplay_analytics.runtime.gateway import proxied
from tests.integration.test_gateway_e2e import running_gateway, stored
from tests.integration.test_gateway_refusals import envelope, hello
from tests.unit.test_proxy_protocol import v2

pytestmark = pytest.mark.integration

NOWHERE = (None, None)  # the loopback peer, or any private address: not geolocated


def _socket_after(port: int, header: bytes) -> socket.socket:
    """A TCP connection to the gateway that has already sent `header` (the balancer's part)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(header)
    sock.setblocking(False)
    return sock


def _location(data: bytes) -> tuple[str | None, str | None]:
    for address in (b"81.2.69.142", b"2a02:c7f::7", b"81.2.69.9", b"127.0.0.1"):
        assert address not in data  # the edge step: never an address in the broker
    batch = messages.decode_batch(data)
    return batch.country, batch.geo_region


async def _stored_location(
    nats_url: str, geoip: Path, header: bytes, **settings: Any
) -> tuple[str | None, str | None]:
    player = str(uuid.uuid4())
    async with (
        running_gateway(nats_url, proxy_protocol=True, geoip_db=geoip, **settings) as gw,
        connect(gw.url, sock=_socket_after(gw.port, header)) as ws,
    ):
        assert (await hello(ws, player))["type"] == "welcome"
        await ws.send(envelope(1, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
    ((_, data),) = await stored(nats_url, player)
    return _location(data)


async def test_a_trusted_proxy_header_names_the_client(nats_url: str, geoip_db: Path) -> None:
    v1 = b"PROXY TCP4 81.2.69.142 10.0.0.1 4711 8765\r\n"
    where = await _stored_location(nats_url, geoip_db, v1, trusted_proxies="127.0.0.0/8")
    assert where == ("GB", "ENG")
    six = v2("2a02:c7f::7", 4711)
    assert await _stored_location(nats_url, geoip_db, six, trusted_proxies="127.0.0.1") == (
        "DE",
        "BE",
    )
    # the balancer's own health check (LOCAL) names nobody: the peer (loopback) stands
    local = v2("81.2.69.9", 1, command=0)
    assert await _stored_location(nats_url, geoip_db, local, trusted_proxies="127.0.0.1") == (
        NOWHERE
    )


async def test_a_trusted_proxy_without_a_header_is_dropped(nats_url: str) -> None:
    def dropped() -> float:
        labels = {"reason": proxied.ABORT_REASON}
        return REGISTRY.get_sample_value("analytics_sessions_aborted_total", labels) or 0.0

    before = dropped()
    async with running_gateway(nats_url, proxy_protocol=True, trusted_proxies="127.0.0.1") as gw:
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError, EOFError)):
            async with connect(gw.url, open_timeout=5):
                pass
    assert dropped() == before + 1  # counted


async def test_an_untrusted_peer_cannot_name_an_address(nats_url: str, geoip_db: Path) -> None:
    header = b"PROXY TCP4 81.2.69.142 10.0.0.1 4711 8765\r\n"
    async with running_gateway(
        nats_url, proxy_protocol=True, trusted_proxies="10.0.0.0/8", geoip_db=geoip_db
    ) as gw:
        # its header is not a WebSocket request: refused
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError, EOFError)):
            async with connect(gw.url, sock=_socket_after(gw.port, header), open_timeout=5):
                pass
        # plain WebSocket works, with the socket peer as the client
        player = str(uuid.uuid4())
        async with connect(gw.url) as ws:
            assert (await hello(ws, player))["type"] == "welcome"
            await ws.send(envelope(1, 1))
            assert json.loads(await ws.recv())["type"] == "ack"
    ((_, data),) = await stored(nats_url, player)
    assert _location(data) == NOWHERE  # the socket peer: loopback, not the header's GB


def test_proxy_protocol_needs_trusted_proxies() -> None:
    from gameplay_analytics.runtime.gateway.settings import GatewaySettings

    with pytest.raises(ValueError, match="proxy_protocol needs trusted_proxies"):
        GatewaySettings(jwt_secret="s", proxy_protocol=True)
