"""Session tokens: HS256 JWTs whose `sub` is the player UUID (PROTOCOL.md §1 `hello`).

Refusals never repeat the token or the player id: the detail names only what was wrong.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import jwt

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError

__all__ = [
    "RELAY_SCOPE",
    "Principal",
    "issue_service_token",
    "issue_token",
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


def verify_token(token: str, *, secret: str, leeway_s: float = 0.0) -> Principal:
    """The principal of a valid token; `ProtocolError(unauthorized)` for anything else.

    `exp` is required: a token that never expires would outlive any player ban.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            leeway=leeway_s,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token expired") from None
    except jwt.MissingRequiredClaimError as err:
        raise ProtocolError(
            ErrorCode.UNAUTHORIZED, f"token lacks the `{err.claim}` claim"
        ) from None
    except jwt.InvalidSignatureError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token signature is invalid") from None
    except jwt.InvalidTokenError as err:
        raise ProtocolError(
            ErrorCode.UNAUTHORIZED, f"token is invalid: {type(err).__name__}"
        ) from None
    try:
        player = str(uuid.UUID(str(claims["sub"])))
    except ValueError:
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "token `sub` is not a player UUID") from None
    return Principal(
        player_uuid=player, shard=_claim(claims, "shard"), region=_claim(claims, "region")
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
