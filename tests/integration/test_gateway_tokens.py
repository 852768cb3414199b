"""A real gateway verifying RS256 tokens from a JWKS URL served over HTTP: players are
welcomed and stored, `alg: none` is refused at `hello`, and a session whose token expires is
closed with `unauthorized` (4401) at its next frame."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime.gateway import Gateway
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from tests.integration.test_gateway_e2e import play, player_events, running_gateway, stored
from tests.integration.test_gateway_refusals import envelope, hello
from tests.unit.test_gateway_tokens import RSA_KEY, jwk, jwks_server  # noqa: F401

pytestmark = pytest.mark.integration

Jwks = tuple[str, Callable[[list[dict[str, Any]]], None], list[int]]


@pytest.fixture
async def gateway(nats_url: str, jwks_server: Jwks) -> AsyncIterator[Gateway]:  # noqa: F811
    url, publish, _ = jwks_server
    publish([jwk(RSA_KEY, "login-1", "RS256")])
    async with running_gateway(
        nats_url,
        jwt_secret=None,  # production: public keys only, no HS256
        jwt_jwks_url=url,
        jwt_issuer="https://login.test",
        hello_timeout_s=2,
    ) as gw:
        yield gw


def rs256(player: str, ttl_s: float = 600) -> str:
    claims = {"sub": player, "iss": "https://login.test", "exp": int(time.time() + ttl_s)}
    return jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "login-1"})


async def test_jwks_token_is_welcomed_and_its_events_stored(
    gateway: Gateway, nats_url: str
) -> None:
    player = str(uuid.uuid4())
    async with connect(gateway.url) as ws:
        assert (await hello(ws, player, token=rs256(player)))["type"] == "welcome"
        await ws.send(envelope(1, 1, 2))
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 2}
    assert len(player_events(await stored(nats_url, player))) == 2


async def test_unsigned_and_development_tokens_are_refused(gateway: Gateway) -> None:
    player = str(uuid.uuid4())
    claims = {"sub": player, "iss": "https://login.test", "exp": int(time.time() + 60)}
    for token in (
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, "guessed-secret-guessed-secret-guessed", algorithm="HS256"),
    ):
        async with connect(gateway.url) as ws:
            reply = await hello(ws, player, token=token)
            assert (reply["code"], reply["detail"]) == (
                "unauthorized",
                "token algorithm is not accepted",
            )
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4401


async def test_a_session_whose_token_expires_is_closed_at_its_next_frame(
    gateway: Gateway,
) -> None:
    player = str(uuid.uuid4())
    token = rs256(player, ttl_s=2)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with connect(gateway.url) as ws:
        assert (await hello(ws, player, token=token))["type"] == "welcome"
        await ws.send(envelope(1, 1))
        assert json.loads(await ws.recv())["type"] == "ack"
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.2)
        await ws.send(envelope(2, 2))
        reply = json.loads(await ws.recv())
        assert (reply["code"], reply["detail"]) == ("unauthorized", "token expired")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401


async def test_the_sdk_reconnects_with_a_fresh_token_from_its_callback(
    gateway: Gateway, nats_url: str
) -> None:
    player = str(uuid.uuid4())
    minted: list[str] = []

    def fresh_token() -> str:  # the game's login service, asked at each connection
        minted.append(rs256(player, ttl_s=2 if not minted else 600))
        return minted[-1]

    client = AnalyticsClient(player_uuid=player, client_guid=uuid.uuid4(), token=fresh_token)
    connector = WebSocketConnector(client, gateway.url, reconnect_min_s=0.05)
    connector.start()
    play(client, 5)
    await asyncio.wait_for(connector.welcomed.wait(), 10)
    expires = jwt.decode(minted[0], options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.3)
    play(client, 5)  # sent after expiry: refused 4401, then resent on a fresh token
    assert await connector.stop(flush_timeout_s=15)
    assert connector.connections >= 2 and len(minted) >= 2  # refused, then reconnected
    seqs = [e.seq for e in player_events(await stored(nats_url, player))]
    assert len(seqs) == len(set(seqs)) == client.stats.buffered  # each exactly once
