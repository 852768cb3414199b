"""Player tokens: RS256 / ES256 from PEM keys and a JWKS URL (served over real HTTP, `kid`
rotation with overlap), HS256 for development, `iss` / `aud`, and the refusals: `alg: none`,
an RS public key used as an HS256 secret, a key of the wrong kind, an unknown key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.runtime.gateway import GatewaySettings
from gameplay_analytics.runtime.gateway.auth import TokenVerifier, verifier_for
from gameplay_analytics.runtime.gateway.keys import KeyRing, load_pem_keys

PLAYER = "6f1c2b9e-0d4a-4a57-9b8e-2f6c1d3e4a5b"
SECRET = "development-secret-development-secret"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_NEXT = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def sign(key: Any, alg: str, *, kid: str | None = None, ttl_s: float = 600, **claims: Any) -> str:
    body = {"sub": PLAYER, "exp": int(time.time() + ttl_s), **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def pem(*keys: Any) -> bytes:
    return b"".join(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in keys
    )


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(
        key.public_key()))  # fmt: skip
    return {**entry, "kid": kid, "alg": alg, "use": "sig"}


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(ProtocolError) as err:
        await verifier.verify(token)
    assert err.value.code is ErrorCode.UNAUTHORIZED
    assert token not in err.value.detail and PLAYER not in err.value.detail
    return err.value.detail


async def test_pem_keys_verify_rs256_and_es256(tmp_path: Path) -> None:
    path = tmp_path / "keys.pem"
    path.write_bytes(pem(RSA_KEY, EC_KEY))
    verifier = TokenVerifier(keys=KeyRing(load_pem_keys(path)))
    for key, alg in ((RSA_KEY, "RS256"), (EC_KEY, "ES256")):
        principal = await verifier.verify(sign(key, alg, region="eu"))
        assert (principal.player_uuid, principal.region) == (PLAYER, "eu")
        assert principal.expires_at is not None and principal.expires_at > time.time()
    assert "signature" in await refused(verifier, sign(RSA_NEXT, "RS256"))  # not its key
    assert "expired" in await refused(verifier, sign(RSA_KEY, "RS256", ttl_s=-5))
    # HS256 is off when no secret is configured (production).
    assert "algorithm" in await refused(verifier, sign(SECRET, "HS256"))


async def test_alg_none_and_algorithm_confusion_are_refused(tmp_path: Path) -> None:
    public_pem = pem(RSA_KEY)
    verifier = TokenVerifier(secret=SECRET, keys=KeyRing([RSA_KEY.public_key()]))
    assert (await verifier.verify(sign(SECRET, "HS256"))).player_uuid == PLAYER  # development
    assert (await verifier.verify(sign(RSA_KEY, "RS256"))).player_uuid == PLAYER
    unsigned = jwt.encode({"sub": PLAYER, "exp": int(time.time() + 60)}, None, algorithm="none")
    assert "algorithm" in await refused(verifier, unsigned)
    # The attacker knows the public key and signs HS256 with its PEM as the secret.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    claims = json.dumps({"sub": PLAYER, "exp": int(time.time() + 60)}).encode()
    body = header + b"." + base64.urlsafe_b64encode(claims).rstrip(b"=")
    mac = hmac.new(public_pem, body, hashlib.sha256).digest()
    forged = (body + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    assert "signature" in await refused(verifier, forged)  # checked with the secret only
    only_keys = TokenVerifier(keys=KeyRing([RSA_KEY.public_key()]))
    assert "algorithm" in await refused(only_keys, forged)
    # An EC token cannot be checked with the RSA key, nor an RS256 header with an EC key.
    assert "no key" in await refused(only_keys, sign(EC_KEY, "ES256"))
    for alg in ("HS384", "RS512", "PS256", "EdDSA"):
        head = base64.urlsafe_b64encode(json.dumps({"alg": alg}).encode()).rstrip(b"=")
        assert "algorithm" in await refused(verifier, (head + b".e30.c2ln").decode())
    assert "DecodeError" in await refused(verifier, "not-a-token")


async def test_issuer_and_audience_are_checked_when_set() -> None:
    verifier = TokenVerifier(
        keys=KeyRing([EC_KEY.public_key()]), issuer="https://login.game", audience="analytics"
    )
    good = sign(EC_KEY, "ES256", iss="https://login.game", aud="analytics")
    assert (await verifier.verify(good)).player_uuid == PLAYER
    await refused(verifier, sign(EC_KEY, "ES256", iss="https://evil", aud="analytics"))
    await refused(verifier, sign(EC_KEY, "ES256", iss="https://login.game", aud="store"))
    assert "`iss`" in await refused(verifier, sign(EC_KEY, "ES256", aud="analytics"))
    assert "`aud`" in await refused(verifier, sign(EC_KEY, "ES256", iss="https://login.game"))


@pytest.fixture
async def jwks_server() -> AsyncIterator[
    tuple[str, Callable[[list[dict[str, Any]]], None], list[int]]
]:
    """A real JWKS endpoint on a free port: (url, publish(keys), fetch counter)."""
    state: dict[str, Any] = {"keys": []}
    fetches = [0]

    async def handler(_: web.Request) -> web.Response:
        fetches[0] += 1
        return web.json_response({"keys": state["keys"]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def publish(keys: list[dict[str, Any]]) -> None:
        state["keys"] = keys

    try:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json", publish, fetches
    finally:
        await runner.cleanup()


async def test_jwks_is_cached_and_a_new_kid_is_taken_up_with_overlap(
    jwks_server: tuple[str, Callable[[list[dict[str, Any]]], None], list[int]],
) -> None:
    url, publish, fetches = jwks_server
    publish([jwk(RSA_KEY, "k1", "RS256"), jwk(EC_KEY, "e1", "ES256")])
    ring = KeyRing(jwks_url=url, refresh_s=3600, min_refetch_s=0)
    verifier = TokenVerifier(keys=ring)
    for _ in range(3):
        assert (await verifier.verify(sign(RSA_KEY, "RS256", kid="k1"))).player_uuid == PLAYER
    assert (await verifier.verify(sign(EC_KEY, "ES256", kid="e1"))).player_uuid == PLAYER
    assert fetches[0] == 1  # cached
    # Rotation: the login service publishes k2 next to k1 and starts signing with it.
    publish([jwk(RSA_KEY, "k1", "RS256"), jwk(RSA_NEXT, "k2", "RS256")])
    assert (await verifier.verify(sign(RSA_NEXT, "RS256", kid="k2"))).player_uuid == PLAYER
    assert fetches[0] == 2  # the unknown kid fetched the JWKS again
    assert (await verifier.verify(sign(RSA_KEY, "RS256", kid="k1"))).player_uuid == PLAYER
    # A token signed with k2's key but naming k1 is not accepted under k1.
    assert "signature" in await refused(verifier, sign(RSA_NEXT, "RS256", kid="k1"))
    # k1 withdrawn: once the ring refreshes, k1 tokens are refused.
    publish([jwk(RSA_NEXT, "k2", "RS256")])
    expired_ring = KeyRing(jwks_url=url, refresh_s=0.0001, min_refetch_s=0)
    late = TokenVerifier(keys=expired_ring)
    assert "no key" in await refused(late, sign(RSA_KEY, "RS256", kid="k1"))
    assert (await late.verify(sign(RSA_NEXT, "RS256", kid="k2"))).player_uuid == PLAYER


async def test_unknown_kids_do_not_hammer_the_jwks_and_an_outage_keeps_the_keys(
    jwks_server: tuple[str, Callable[[list[dict[str, Any]]], None], list[int]],
) -> None:
    url, publish, fetches = jwks_server
    publish([jwk(RSA_KEY, "k1", "RS256")])
    verifier = TokenVerifier(keys=KeyRing(jwks_url=url, refresh_s=3600, min_refetch_s=3600))
    assert (await verifier.verify(sign(RSA_KEY, "RS256", kid="k1"))).player_uuid == PLAYER
    for n in range(5):
        await refused(verifier, sign(RSA_NEXT, "RS256", kid=f"bogus-{n}"))
    assert fetches[0] == 1
    # A broken JWKS (or an outage): the keys already held keep verifying.
    ring = KeyRing(jwks_url=url, refresh_s=0.0001, min_refetch_s=0)
    verifier = TokenVerifier(keys=ring)
    assert (await verifier.verify(sign(RSA_KEY, "RS256", kid="k1"))).player_uuid == PLAYER
    publish("not a list")  # type: ignore[arg-type]
    before = fetches[0]
    assert (await verifier.verify(sign(RSA_KEY, "RS256", kid="k1"))).player_uuid == PLAYER
    assert fetches[0] == before + 1  # it did try
    down = KeyRing(jwks_url="http://127.0.0.1:9/none", refresh_s=0.0001, min_refetch_s=0)
    assert "no key" in await refused(TokenVerifier(keys=down), sign(RSA_KEY, "RS256", kid="k1"))


def test_settings_need_a_way_to_verify_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        GatewaySettings(nats_url="nats://n:4222")
    path = tmp_path / "keys.pem"
    path.write_bytes(pem(RSA_KEY))
    settings = GatewaySettings(nats_url="nats://n:4222", jwt_public_keys_file=path)
    assert isinstance(verifier_for(settings), TokenVerifier)
    path.write_bytes(b"not a key")
    with pytest.raises(ValueError, match="PUBLIC KEY"):
        verifier_for(settings)
