"""One WebSocket session: `hello`, then `analytics` frames admitted, taken in and queued.

Every refusal is a protocol `error` frame and the session goes on serving; only a bad `hello`
(4401), a missing one (4408) and an oversized frame (1009, by the websockets library) close it.
The parts: `handshake` (hello → `SessionContext`), admission (rate and queue room, decided from
the frame header before any event is validated), `intake` (pure: frame → messages, ack,
counts), `replies` (outbox and writer), `telemetry` (RTT, snapshot samples).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import Protocol

from websockets.exceptions import ConnectionClosed

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.errors import CloseCode, DropReason, ErrorCode, ProtocolError
from gameplay_analytics.privacy.edge import EdgeKeys, PlayerEdge
from gameplay_analytics.runtime.config import LiveConfig
from gameplay_analytics.runtime.gateway import metrics
from gameplay_analytics.runtime.gateway.auth import Principal, TokenVerifier
from gameplay_analytics.runtime.gateway.budgets import PlayerBudgets
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.handshake import SessionContext, expired, handshake
from gameplay_analytics.runtime.gateway.ingest import Backpressure, IngestWorker
from gameplay_analytics.runtime.gateway.intake import Intake, intake, version_detail
from gameplay_analytics.runtime.gateway.replies import Outbox, TokenBucket
from gameplay_analytics.runtime.gateway.settings import GatewaySettings
from gameplay_analytics.runtime.gateway.sockets import FrameSocket
from gameplay_analytics.runtime.gateway.telemetry import latency_bucket, snapshot_sample

__all__ = ["Hub", "Session"]


class Hub(Protocol):
    """What a session needs of its gateway."""

    settings: GatewaySettings
    worker: IngestWorker
    verifier: TokenVerifier
    budgets: PlayerBudgets

    @property
    def live(self) -> LiveConfig: ...

    @property
    def multiplier(self) -> float: ...

    @property
    def edge(self) -> EdgeKeys: ...

    def add(self, session: Session) -> None: ...

    def discard(self, session: Session) -> None: ...


class _Welcomed:
    """The state of a session past its handshake: context, guard, RTT, limits."""

    __slots__ = ("ctx", "edge", "frames", "guard", "latency", "player_frames", "telemetry")

    def __init__(
        self,
        ctx: SessionContext,
        guard: SamplingGuard,
        settings: GatewaySettings,
        player_frames: TokenBucket,
        edge: PlayerEdge,
    ):
        now = time.monotonic()
        self.ctx = ctx
        self.edge = edge  # the player's pseudonyms, profile key, location: what is published
        self.guard = guard
        self.latency: str | None = None
        self.frames = TokenBucket(settings.max_rate_hz, now)
        self.player_frames = player_frames  # shared by the player's sessions (budgets.py)
        self.telemetry = TokenBucket(settings.telemetry_max_hz, now)


class Session:
    """Serves one connection from handshake to close.

    `player` is set when an embedding game server authenticated the player itself (embed.py);
    `client_ip` when the gateway read it from a trusted proxy's headers (clientaddr.py),
    otherwise the socket peer is the client.
    """

    def __init__(
        self,
        ws: FrameSocket,
        hub: Hub,
        *,
        player: Principal | None = None,
        client_ip: str | None = None,
    ) -> None:
        self._ws = ws
        remote = ws.remote_address
        self._client_ip = client_ip or (str(remote[0]) if remote else None)
        self._player = player
        self._hub = hub
        self._settings = hub.settings
        self.session_id = str(uuid.uuid4())
        self._outbox = Outbox(
            ws,
            max_frames=self._settings.max_outbox_frames,
            drain_timeout_s=self._settings.drain_timeout_s,
            name=self.session_id,
        )
        self._state: _Welcomed | None = None
        self.last_combat = -math.inf  # monotonic time of the last combat event received

    @property
    def analytics_consent(self) -> bool:
        """False for an opted-out session (`consent.analytics == false`, it stores nothing)
        and before the handshake."""
        return self._state is not None and self._state.ctx.consent.analytics

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        self._outbox.start()
        try:
            ctx = await handshake(
                self._ws,
                self._outbox,
                settings=self._settings,
                verifier=self._hub.verifier,
                session_id=self.session_id,
                client_ip=self._client_ip,
                player=self._player,
            )
            if ctx is not None:
                await self._read_frames(self._welcome(ctx))
        except ConnectionClosed:
            pass
        finally:
            if self._state is not None:
                self._hub.budgets.leave(self._state.ctx.player_uuid)
                self._hub.discard(self)
            await self._outbox.flush()

    async def close(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "gateway shutting down"
    ) -> None:
        """Flush pending replies, then close the socket."""
        await self._outbox.flush()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code, reason), self._settings.drain_timeout_s)

    def push_sampling(self, live: LiveConfig, multiplier: float) -> None:
        """Send the new rules/multiplier; the guard follows them (with a grace period)."""
        if self._state is None:
            return
        self._state.guard.update(
            live.rules, multiplier, now=time.monotonic(), grace_s=self._settings.rules_grace_s
        )
        frame = frames.SamplingFrame(
            sampling=live.wire, sampling_version=live.rules.version, multiplier=multiplier
        )
        self._outbox.send(frames.encode(frame))

    def _welcome(self, ctx: SessionContext) -> _Welcomed:
        hub = self._hub
        live, multiplier = hub.live, hub.multiplier
        guard = SamplingGuard(
            player_uuid=ctx.player_uuid,
            consent=ctx.consent,
            rules=live.rules,
            multiplier=multiplier,
        )
        welcome = frames.Welcome(
            session_id=self.session_id,
            sampling=live.wire,
            sampling_version=live.rules.version,
            max_events_per_envelope=self._settings.max_events_per_envelope,
            max_rate_hz=self._settings.max_rate_hz,
            multiplier=multiplier,
        )
        self._outbox.send(frames.encode(welcome))
        player_frames = hub.budgets.join(ctx.player_uuid, time.monotonic())
        edge = hub.edge.player(ctx.player_uuid, ctx.client_ip)
        self._state = state = _Welcomed(ctx, guard, self._settings, player_frames, edge)
        hub.add(self)
        if live.registry.validator(ctx.schema) is None:
            self._outbox.error(ErrorCode.ANALYTICS_VERSION, version_detail(ctx.schema, live))
        elif ctx.schema_hash is not None and ctx.schema_hash != live.registry.schema_hash(
            ctx.schema
        ):
            metrics.SCHEMA_HASH_MISMATCH.labels(ctx.schema).inc()
        return state

    # -- frames ----------------------------------------------------------------------------

    async def _read_frames(self, state: _Welcomed) -> None:
        ws = self._ws
        while True:
            data = await ws.recv(decode=False)
            if expired(state.ctx, now=time.time(), leeway_s=self._settings.jwt_leeway_s):
                await self._outbox.refuse(
                    ErrorCode.UNAUTHORIZED, "token expired", CloseCode.UNAUTHORIZED
                )
                return
            try:
                frame = frames.parse_client_frame(data)
                if isinstance(frame, frames.AnalyticsFrame):
                    if await self._admit(state, frame):
                        self._on_analytics(state, frame)
                elif isinstance(frame, frames.Telemetry):
                    self._on_telemetry(state, frame)
                elif isinstance(frame, frames.Hello):
                    self._outbox.error(ErrorCode.BAD_REQUEST, "hello: the session already has one")
                # `input` belongs to the game server; ignored here without error.
            except ProtocolError as err:
                self._outbox.error(err.code, err.detail, err.frame_id)

    async def _admit(self, state: _Welcomed, frame: frames.AnalyticsFrame) -> bool:
        """Admission, before any event is validated: the connection's rate, the player's (over
        all their connections), then queue room (waiting up to `admission_wait_s` for it,
        without reading the socket meanwhile)."""
        now = time.monotonic()
        if not state.frames.take(now):
            metrics.ENVELOPES_REFUSED.labels(ErrorCode.RATE_LIMITED).inc()
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self._settings.max_rate_hz} analytics frames per second",
                frame_id=frame.id,
            )
        if not state.player_frames.take(now):
            metrics.ENVELOPES_REFUSED.labels(ErrorCode.RATE_LIMITED).inc()
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self._hub.budgets.rate_hz:g} analytics frames per second "
                "for this player (all connections)",
                frame_id=frame.id,
            )
        refusal = await self._hub.worker.admit(self._settings.admission_wait_s)
        if refusal is None:
            return True
        self._backpressure(frame.id, refusal)
        return False

    def _on_analytics(self, state: _Welcomed, frame: frames.AnalyticsFrame) -> None:
        now = time.monotonic()
        result = intake(
            frame,
            state.ctx,
            state.guard,
            self._hub.live,
            now=now,
            received_at=_epoch_ms(),
            latency=state.latency,
            edge=state.edge,
        )
        metrics.count_received(result.categories)
        metrics.count_rejected(result.rejected)
        if result.combat:
            self.last_combat = now
        if not result.outbound:
            metrics.count_drops(result.drops)
            self._outbox.send(frames.encode(result.ack))
            return
        try:
            future = self._hub.worker.submit(result.outbound, events=result.weight)
        except Backpressure as err:
            metrics.DROP.labels(DropReason.BACKPRESSURE).inc(result.valid)
            self._backpressure(frame.id, err.detail)
            return
        metrics.count_drops(result.drops)
        future.add_done_callback(lambda f: self._settle(f, result))

    def _backpressure(self, frame_id: int, detail: str) -> None:
        metrics.ENVELOPES_REFUSED.labels(ErrorCode.BACKPRESSURE).inc()
        retry = self._hub.worker.retry_after_ms(detail, self._settings.retry_after_ms)
        self._outbox.error(ErrorCode.BACKPRESSURE, detail, frame_id, retry_after_ms=retry)

    def _settle(self, future: asyncio.Future[None], result: Intake) -> None:
        if future.cancelled() or future.exception() is not None:
            metrics.DROP.labels(DropReason.PUBLISH_FAILED).inc(result.ack.accepted)
            self._backpressure(result.ack.id, "event store did not acknowledge in time")
            return
        self._outbox.send(frames.encode(result.ack))

    def _on_telemetry(self, state: _Welcomed, frame: frames.Telemetry) -> None:
        now = time.monotonic()
        if not state.telemetry.take(now):
            return
        if frame.rtt_ms is not None:
            state.latency = latency_bucket(frame.rtt_ms)
        sample = snapshot_sample(
            frame, state.ctx, state.guard, now=now, received_at=_epoch_ms(),
            latency=state.latency, edge=state.edge,
        )  # fmt: skip
        if sample is None:
            return
        if isinstance(sample, DropReason):
            metrics.DROP.labels(sample).inc()
            return
        with contextlib.suppress(Backpressure):  # a sample, not worth a refusal
            self._hub.worker.submit([sample], events=1).add_done_callback(_ignore_outcome)


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it
