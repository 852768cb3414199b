"""A real gateway takes the client's address from a trusted proxy's `X-Forwarded-For` /
`Forwarded`, and ignores those headers from anyone else (the stored batch says which)."""

from __future__ import annotations

import json
import uuid

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.contract import messages
from tests.integration.test_gateway_e2e import running_gateway, stored
from tests.integration.test_gateway_refusals import envelope, hello

pytestmark = pytest.mark.integration


async def stored_client_ip(nats_url: str, trusted: str, headers: dict[str, str]) -> str | None:
    player = str(uuid.uuid4())
    async with (
        running_gateway(nats_url, trusted_proxies=trusted) as gw,
        connect(gw.url, additional_headers=headers) as ws,
    ):
        assert (await hello(ws, player))["type"] == "welcome"
        await ws.send(envelope(1, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
    ((_, data),) = await stored(nats_url, player)
    return messages.decode_batch(data).client_ip


async def test_a_trusted_proxy_names_the_client(nats_url: str) -> None:
    # The test client is the "load balancer" at 127.0.0.1.
    spoof = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}  # a forged hop, then the LB's own
    assert await stored_client_ip(nats_url, "127.0.0.0/8", spoof) == "198.51.100.7"
    forwarded = {"Forwarded": 'for="[2001:db8::7]:4711"', "X-Forwarded-For": "6.6.6.6"}
    assert await stored_client_ip(nats_url, "127.0.0.1,::1", forwarded) == "2001:db8::7"


async def test_an_untrusted_peer_cannot_spoof_its_address(nats_url: str) -> None:
    spoof = {"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.8"}
    assert await stored_client_ip(nats_url, "", spoof) == "127.0.0.1"
    assert await stored_client_ip(nats_url, "10.0.0.0/8", spoof) == "127.0.0.1"
