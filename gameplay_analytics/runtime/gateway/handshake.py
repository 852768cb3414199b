"""The handshake: wait for `hello`, verify its token, freeze what the session knows.

Everything after the handshake reads a `SessionContext`, which exists only once the `hello` was
accepted: no half-initialised session state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from gameplay_analytics.contract import frames, messages
from gameplay_analytics.contract.errors import CloseCode, ErrorCode, ProtocolError
from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.runtime.gateway import auth
from gameplay_analytics.runtime.gateway.replies import Outbox
from gameplay_analytics.runtime.gateway.settings import GatewaySettings
from gameplay_analytics.runtime.gateway.sockets import FrameSocket

__all__ = ["SessionContext", "accept_hello", "expired", "handshake"]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionContext:
    """What an accepted `hello` established about a session; fixed for its lifetime."""

    session_id: str
    player_uuid: str  # canonical lowercase, from the verified token
    client_guid: str
    schema: str
    consent: Consent
    schema_hash: str | None = None
    client_ip: str | None = None
    shard: str | None = None
    region: str | None = None
    build: str | None = None
    platform: str | None = None
    events_subject: str = messages.EVENTS_SUBJECT  # the pipeline's (GatewaySettings)
    dlq_subject: str = messages.DLQ_SUBJECT
    source: str = messages.SOURCE_CLIENT
    expires_at: float | None = None  # the token's `exp`: past it (+ leeway), 4401


def expired(ctx: SessionContext, *, now: float, leeway_s: float) -> bool:
    """Whether the session's token has expired (an embedded session's never does)."""
    return ctx.expires_at is not None and now > ctx.expires_at + leeway_s


def accept_hello(
    hello: frames.Hello,
    *,
    session_id: str,
    settings: GatewaySettings,
    client_ip: str | None,
    principal: auth.Principal,
) -> SessionContext:
    """The context of a `hello` whose token verified as `principal`."""
    return SessionContext(
        session_id=session_id,
        player_uuid=principal.player_uuid,
        client_guid=str(hello.client_guid),
        schema=hello.schema,
        schema_hash=hello.schema_hash,
        consent=Consent.from_hello(hello.consent),
        client_ip=client_ip,
        shard=principal.shard or settings.shard,
        region=principal.region,
        build=hello.build or None,
        platform=hello.platform or None,
        events_subject=settings.events_subject,
        dlq_subject=settings.dlq_subject,
        source=principal.source,
        expires_at=principal.expires_at,
    )


async def handshake(
    ws: FrameSocket,
    outbox: Outbox,
    *,
    settings: GatewaySettings,
    verifier: auth.TokenVerifier,
    session_id: str,
    client_ip: str | None,
    player: auth.Principal | None = None,
) -> SessionContext | None:
    """Serve frames until a `hello`: its context, or None once the connection was refused
    (bad token 4401, `analytics` before `hello` 4401, no `hello` in time 4408). Malformed
    frames are answered with `bad_request` and the wait goes on.

    `player` is a principal the embedding game server already authenticated on its own
    socket: then the hello's token is not read (a game client may send an empty one).
    """
    deadline = time.monotonic() + settings.hello_timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(ws.recv(decode=False), remaining)
        except TimeoutError:
            await outbox.refuse(
                ErrorCode.UNAUTHORIZED, "no hello within the time allowed", CloseCode.HELLO_TIMEOUT
            )
            return None
        try:
            frame = frames.parse_client_frame(data)
        except ProtocolError as err:
            outbox.error(err.code, err.detail)
            continue
        if isinstance(frame, frames.Hello):
            try:
                return accept_hello(
                    frame,
                    session_id=session_id,
                    settings=settings,
                    client_ip=client_ip,
                    principal=player or await verifier.verify(frame.token),
                )
            except ProtocolError as err:
                await outbox.refuse(err.code, err.detail, CloseCode.UNAUTHORIZED)
                return None
        if isinstance(frame, frames.AnalyticsFrame):
            await outbox.refuse(
                ErrorCode.UNAUTHORIZED, "analytics before hello", CloseCode.UNAUTHORIZED, frame.id
            )
            return None
        # telemetry / input before hello: nothing to attribute them to; ignore.
