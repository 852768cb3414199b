"""A real gateway takes the client's address from a trusted proxy's `X-Forwarded-For` /
`Forwarded`, and ignores those headers from anyone else. The address itself never leaves the
gateway (the edge step): the stored batch says where it is, by country and region."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.contract import messages
from tests.integration.test_gateway_e2e import running_gateway, stored
from tests.integration.test_gateway_refusals import envelope, hello

pytestmark = pytest.mark.integration

ADDRESSES = ("6.6.6.6", "81.2.69.142", "81.2.69.143", "2a02:c7f::7", "127.0.0.1")


async def stored_location(
    nats_url: str, geoip: Path, trusted: str, headers: dict[str, str]
) -> tuple[str | None, str | None]:
    player = str(uuid.uuid4())
    async with (
        running_gateway(nats_url, trusted_proxies=trusted, geoip_db=geoip) as gw,
        connect(gw.url, additional_headers=headers) as ws,
    ):
        assert (await hello(ws, player))["type"] == "welcome"
        await ws.send(envelope(1, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
    ((_, data),) = await stored(nats_url, player)
    for address in ADDRESSES:  # no address, forged or real, reaches the broker
        assert address.encode() not in data
    batch = messages.decode_batch(data)
    return batch.country, batch.geo_region


async def test_a_trusted_proxy_names_the_client(nats_url: str, geoip_db: Path) -> None:
    # The test client is the "load balancer" at 127.0.0.1.
    spoof = {"X-Forwarded-For": "6.6.6.6, 81.2.69.142"}  # a forged hop, then the LB's own
    assert await stored_location(nats_url, geoip_db, "127.0.0.0/8", spoof) == ("GB", "ENG")
    forwarded = {"Forwarded": 'for="[2a02:c7f::7]:4711"', "X-Forwarded-For": "81.2.69.142"}
    assert await stored_location(nats_url, geoip_db, "127.0.0.1,::1", forwarded) == ("DE", "BE")


async def test_an_untrusted_peer_cannot_spoof_its_address(nats_url: str, geoip_db: Path) -> None:
    spoof = {"X-Forwarded-For": "81.2.69.142", "Forwarded": "for=81.2.69.143"}
    assert await stored_location(nats_url, geoip_db, "", spoof) == (None, None)  # 127.0.0.1
    assert await stored_location(nats_url, geoip_db, "10.0.0.0/8", spoof) == (None, None)
