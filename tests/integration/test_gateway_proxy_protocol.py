"""A real gateway behind a PROXY-protocol load balancer (GAMEPLAY_ANALYTICS_PROXY_PROTOCOL):
a trusted proxy's v1/v2 header names the client (the stored batch says so), a trusted proxy
without a header is dropped, and an untrusted peer cannot name an address with one."""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidMessage

from gameplay_analytics.contract import messages
from tests.integration.test_gateway_e2e import running_gateway, stored
from tests.integration.test_gateway_refusals import envelope, hello
from tests.unit.test_proxy_protocol import v2

pytestmark = pytest.mark.integration


def _socket_after(port: int, header: bytes) -> socket.socket:
    """A TCP connection to the gateway that has already sent `header` (the balancer's part)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(header)
    sock.setblocking(False)
    return sock


async def _stored_client_ip(nats_url: str, header: bytes, **settings: Any) -> str | None:
    player = str(uuid.uuid4())
    async with (
        running_gateway(nats_url, proxy_protocol=True, **settings) as gw,
        connect(gw.url, sock=_socket_after(gw.port, header)) as ws,
    ):
        assert (await hello(ws, player))["type"] == "welcome"
        await ws.send(envelope(1, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
    ((_, data),) = await stored(nats_url, player)
    return messages.decode_batch(data).client_ip


async def test_a_trusted_proxy_header_names_the_client(nats_url: str) -> None:
    v1 = b"PROXY TCP4 198.51.100.7 10.0.0.1 4711 8765\r\n"
    assert await _stored_client_ip(nats_url, v1, trusted_proxies="127.0.0.0/8") == "198.51.100.7"
    six = v2("2001:db8::7", 4711)
    assert await _stored_client_ip(nats_url, six, trusted_proxies="127.0.0.1") == "2001:db8::7"
    # the balancer's own health check (LOCAL) names nobody: the peer stands
    local = v2("198.51.100.9", 1, command=0)
    assert await _stored_client_ip(nats_url, local, trusted_proxies="127.0.0.1") == "127.0.0.1"


async def test_a_trusted_proxy_without_a_header_is_dropped(nats_url: str) -> None:
    async with running_gateway(nats_url, proxy_protocol=True, trusted_proxies="127.0.0.1") as gw:
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError, EOFError)):
            async with connect(gw.url, open_timeout=5):
                pass


async def test_an_untrusted_peer_cannot_name_an_address(nats_url: str) -> None:
    header = b"PROXY TCP4 198.51.100.7 10.0.0.1 4711 8765\r\n"
    async with running_gateway(nats_url, proxy_protocol=True, trusted_proxies="10.0.0.0/8") as gw:
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
    assert messages.decode_batch(data).client_ip == "127.0.0.1"


def test_proxy_protocol_needs_trusted_proxies() -> None:
    from gameplay_analytics.runtime.gateway.settings import GatewaySettings

    with pytest.raises(ValueError, match="proxy_protocol needs trusted_proxies"):
        GatewaySettings(jwt_secret="s", proxy_protocol=True)
