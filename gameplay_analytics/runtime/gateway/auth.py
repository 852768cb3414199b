"""Session tokens: JWTs whose `sub` is the player UUID (PROTOCOL.md §1 `hello`).

RS256 / ES256 with the login service's public keys (PEM or JWKS, keys.py) in production,
HS256 with a shared secret for development. The token's header picks the algorithm only among
those configured, and each algorithm is verified with its own kind of key: `alg: none` and an
RS public key used as an HS256 secret (algorithm confusion) are refused.
Refusals never repeat the token or the player id: the detail names only what was wrong.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import jwt

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.runtime.gateway.keys import (
    ASYMMETRIC_ALGORITHMS,
    KeyRing,
    PublicKey,
    load_pem_keys,
)
from gameplay_analytics.runtime.gateway.settings import GatewaySettings

__all__ = [
    "RELAY_SCOPE",
    "Principal",
    "TokenVerifier",
    "issue_service_token",
    "issue_token",
    "verifier_for",
    "verify_service_token",
    "verify_token",
]

RELAY_SCOPE = "relay"
"""The `scope` claim of a game server's service token for `/relay` (docs/relay.md)."""

_ALGORITHM = "HS256"


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for: the player (canonical lowercase UUID) and claims."""

    player_uuid: str
    shard: str | None = None
    region: str | None = None
    source: str = "client"
    """`server` only for a game server's own events, vouched for by its relay service token
    (relay.py, `relay_hello.source`); never from a player's token."""
    expires_at: float | None = None  # the token's `exp` (epoch seconds); None: embedded


class TokenVerifier:
    """Verifies the players' tokens with what the gateway was configured with.

    `secret`: HS256 (development); `keys`: RS256 / ES256. `issuer` / `audience`, when set,
    must match the token's `iss` / `aud`.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        keys: KeyRing | None = None,
        leeway_s: float = 0.0,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        if secret is None and keys is None:
            raise ValueError("a token verifier needs an HS256 secret or public keys")
        self._secret = secret
        self._keys = keys
        self.leeway_s = leeway_s
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; `ProtocolError(unauthorized)` for anything else."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "token is invalid: DecodeError") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        keys: list[str | PublicKey]
        if algorithm == _ALGORITHM and self._secret is not None:
            keys = [self._secret]  # never a public key: no RS-key-as-HS-secret confusion
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._keys is not None:
            named = kid if isinstance(kid, str) else None
            keys = list(await self._keys.candidates(algorithm, named))
            if not keys:
                raise ProtocolError(ErrorCode.UNAUTHORIZED, "no key known for this token")
        else:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "token algorithm is not accepted")
        for key in keys[:-1]:  # overlapping keys: the last one's refusal is the answer
            try:
                return self._decode(token, key, algorithm)
            except ProtocolError:
                continue
        return self._decode(token, keys[-1], algorithm)

    def _decode(self, token: str, key: str | PublicKey, algorithm: str) -> Principal:
        return _principal(
            _decode(
                token, key, algorithm, self.leeway_s, issuer=self._issuer, audience=self._audience
            )
        )


def verify_token(token: str, *, secret: str, leeway_s: float = 0.0) -> Principal:
    """The principal of a valid HS256 token; `ProtocolError(unauthorized)` for anything else.

    `exp` is required: a token that never expires would outlive any player ban.
    """
    return _principal(_decode(token, secret, _ALGORITHM, leeway_s))


def _decode(
    token: str,
    key: str | PublicKey,
    algorithm: str,
    leeway_s: float,
    *,
    issuer: str | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    required = ["sub", "exp"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            leeway=leeway_s,
            issuer=issuer,
            audience=audience,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token expired") from None
    except jwt.MissingRequiredClaimError as err:
        raise ProtocolError(
            ErrorCode.UNAUTHORIZED, f"token lacks the `{err.claim}` claim"
        ) from None
    except jwt.InvalidSignatureError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token signature is invalid") from None
    except jwt.PyJWTError as err:  # InvalidTokenError, InvalidKeyError (a key of the wrong kind)
        raise ProtocolError(
            ErrorCode.UNAUTHORIZED, f"token is invalid: {type(err).__name__}"
        ) from None
    return claims


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        player = str(uuid.UUID(str(claims["sub"])))
    except ValueError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token `sub` is not a player UUID") from None
    return Principal(
        player_uuid=player,
        shard=_claim(claims, "shard"),
        region=_claim(claims, "region"),
        expires_at=float(claims["exp"]),
    )


def issue_token(
    player_uuid: str | uuid.UUID,
    *,
    secret: str,
    ttl_s: float = 3600.0,
    shard: str | None = None,
    region: str | None = None,
    now: float | None = None,
) -> str:
    """A token for `player_uuid` valid for `ttl_s` (negative: already expired, for tests).

    The game's login service mints these in production; this one serves the local stack's
    `gameplay-analytics token`, the demo players and the tests.
    """
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "sub": str(uuid.UUID(str(player_uuid))),
        "iat": int(issued),
        "exp": int(issued + ttl_s),
    }
    if shard is not None:
        claims["shard"] = shard
    if region is not None:
        claims["region"] = region
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def issue_service_token(service: str, *, secret: str, ttl_s: float = 3600.0) -> str:
    """A game server's token for `/relay`: `sub` the service name, `scope` relay."""
    issued = int(time.time())
    claims = {"sub": service, "scope": RELAY_SCOPE, "iat": issued, "exp": int(issued + ttl_s)}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_service_token(token: str, *, secret: str, leeway_s: float = 0.0) -> str:
    """The service name of a valid relay token; `ProtocolError(unauthorized)` otherwise.

    Its secret is not the players' one, so no player token can open a relay, and a relay
    token must say `scope: relay`.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            leeway=leeway_s,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "service token expired") from None
    except jwt.PyJWTError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "service token is not valid") from None
    if claims.get("scope") != RELAY_SCOPE or not _claim(claims, "sub"):
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "service token lacks `scope: relay`")
    return str(claims["sub"])


def _claim(claims: dict[str, object], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def verifier_for(settings: GatewaySettings) -> TokenVerifier:
    """The verifier a gateway's settings describe (ValueError for an unreadable PEM file)."""
    keys = None
    if settings.jwt_public_keys_file is not None or settings.jwt_jwks_url is not None:
        pem = settings.jwt_public_keys_file
        keys = KeyRing(
            load_pem_keys(pem) if pem is not None else (),
            jwks_url=settings.jwt_jwks_url,
            refresh_s=settings.jwt_jwks_refresh_s,
        )
    secret = settings.jwt_secret
    return TokenVerifier(
        secret=secret.get_secret_value() if secret is not None else None,
        keys=keys,
        leeway_s=settings.jwt_leeway_s,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
