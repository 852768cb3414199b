"""One WebSocket session: `hello`, then `analytics` frames validated, guarded and queued.

Every refusal is a protocol `error` frame and the session goes on serving; only a bad `hello`
(4401), a missing one (4408) and an oversized frame (1009, by the websockets library) close it.
Replies leave through one writer task per session, in the order they were decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import time
import uuid
from typing import Any, Protocol

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.contract import frames, messages, taxonomy
from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.runtime.config import LiveConfig
from gameplay_analytics.runtime.gateway import auth, metrics
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.ingest import Backpressure, IngestWorker, Outbound
from gameplay_analytics.runtime.gateway.metrics import DropReason
from gameplay_analytics.runtime.gateway.settings import GatewaySettings

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_HELLO_TIMEOUT",
    "CLOSE_UNAUTHORIZED",
    "Hub",
    "Session",
    "latency_bucket",
]

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_HELLO_TIMEOUT = 4408
CLOSE_GOING_AWAY = 1001

_TELEMETRY_NAMESPACE = uuid.UUID("6f1c1d0e-8a51-4a8e-9e9e-7a1e1e7e1e7e")
_LATENCY_BUCKETS = (
    (50.0, "<50ms"),
    (100.0, "50-100ms"),
    (200.0, "100-200ms"),
    (500.0, "200-500ms"),
)
_RECEIVED = {c: metrics.RECEIVED.labels(c.value) for c in taxonomy.Category}
_RECEIVED_UNKNOWN = metrics.RECEIVED.labels("unknown")


class Hub(Protocol):
    """What a session needs of its gateway."""

    settings: GatewaySettings
    worker: IngestWorker

    @property
    def live(self) -> LiveConfig: ...

    @property
    def multiplier(self) -> float: ...

    def dlq_player_id(self, player_uuid: str) -> str: ...

    def add(self, session: Session) -> None: ...

    def discard(self, session: Session) -> None: ...


def latency_bucket(rtt_ms: float | None) -> str | None:
    """The RTT bucket stamped on batches, from the client's last `telemetry`."""
    if rtt_ms is None:
        return None
    for bound, label in _LATENCY_BUCKETS:
        if rtt_ms < bound:
            return label
    return "500ms+"


class _Bucket:
    """Token bucket: `rate` per second, bursts up to `rate` (at least one)."""

    __slots__ = ("_capacity", "_last", "_rate", "_tokens")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._last = time.monotonic()

    def take(self, now: float) -> bool:
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Session:
    """Serves one connection from handshake to close."""

    def __init__(self, ws: ServerConnection, hub: Hub) -> None:
        self._ws = ws
        self._hub = hub
        self._settings = hub.settings
        self.session_id = str(uuid.uuid4())
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._choked = False
        self._welcomed = False
        self._guard: SamplingGuard | None = None
        self.last_combat = -math.inf  # monotonic time of the last combat event received
        self._principal: auth.Principal | None = None
        self._hello: frames.Hello | None = None
        self._client_guid = ""
        self._client_ip: str | None = None
        self._rtt_ms: float | None = None
        self._frames = _Bucket(self._settings.max_rate_hz)
        self._telemetry = _Bucket(self._settings.telemetry_max_hz)
        self._pid_day: tuple[datetime.date, str] | None = None
        self._consent = Consent()
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"session-writer-{self.session_id}")
        try:
            if await self._handshake():
                await self._read_frames()
        except ConnectionClosed:
            pass
        finally:
            if self._welcomed:
                self._hub.discard(self)
            await self._flush()

    async def close(
        self, code: int = CLOSE_GOING_AWAY, reason: str = "gateway shutting down"
    ) -> None:
        """Flush pending replies, then close the socket."""
        await self._flush()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code, reason), self._settings.drain_timeout_s)

    async def _flush(self) -> None:
        """Stop the writer after it sent everything queued so far."""
        self._outbox.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), self._settings.drain_timeout_s)

    def push_sampling(self, live: LiveConfig, multiplier: float) -> None:
        """Send the new rules/multiplier; the guard follows them (with a grace period)."""
        if not self._welcomed or self._guard is None:
            return
        self._guard.update(
            live.rules, multiplier, now=time.monotonic(), grace_s=self._settings.rules_grace_s
        )
        frame = frames.SamplingFrame(
            sampling=live.wire, sampling_version=live.rules.version, multiplier=multiplier
        )
        self._send(frames.encode(frame))

    # -- handshake -------------------------------------------------------------------------

    async def _handshake(self) -> bool:
        deadline = time.monotonic() + self._settings.hello_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(self._ws.recv(decode=False), remaining)
            except TimeoutError:
                await self._refuse(
                    ErrorCode.UNAUTHORIZED, "no hello within the time allowed", CLOSE_HELLO_TIMEOUT
                )
                return False
            try:
                frame = frames.parse_client_frame(data)
            except ProtocolError as err:
                self._error(err.code, err.detail)
                continue
            if isinstance(frame, frames.Hello):
                return await self._on_hello(frame)
            if isinstance(frame, frames.AnalyticsFrame):
                await self._refuse(
                    ErrorCode.UNAUTHORIZED, "analytics before hello", CLOSE_UNAUTHORIZED, frame.id
                )
                return False
            # telemetry / input before hello: nothing to attribute them to; ignore.

    async def _on_hello(self, hello: frames.Hello) -> bool:
        try:
            principal = auth.verify_token(
                hello.token,
                secret=self._settings.jwt_secret.get_secret_value(),
                leeway_s=self._settings.jwt_leeway_s,
            )
        except ProtocolError as err:
            await self._refuse(err.code, err.detail, CLOSE_UNAUTHORIZED)
            return False
        hub = self._hub
        live, multiplier = hub.live, hub.multiplier
        self._principal, self._hello = principal, hello
        self._client_guid = str(hello.client_guid)
        remote = self._ws.remote_address
        self._client_ip = str(remote[0]) if remote else None
        self._consent = Consent.from_hello(hello.consent)
        self._guard = SamplingGuard(
            player_uuid=principal.player_uuid,
            consent=self._consent,
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
        self._send(frames.encode(welcome))
        self._welcomed = True
        hub.add(self)
        if live.registry.validator(hello.schema) is None:
            self._error(ErrorCode.ANALYTICS_VERSION, _version_detail(hello.schema, live))
        return True

    # -- frames ----------------------------------------------------------------------------

    async def _read_frames(self) -> None:
        ws = self._ws
        while True:
            data = await ws.recv(decode=False)
            try:
                frame = frames.parse_client_frame(data)
                if isinstance(frame, frames.AnalyticsFrame):
                    self._on_analytics(frame)
                elif isinstance(frame, frames.Telemetry):
                    self._on_telemetry(frame)
                elif isinstance(frame, frames.Hello):
                    self._error(ErrorCode.BAD_REQUEST, "hello: the session already has one")
                # `input` belongs to the game server; ignored here without error.
            except ProtocolError as err:
                self._error(err.code, err.detail, err.frame_id)

    def _on_analytics(self, frame: frames.AnalyticsFrame) -> None:
        now = time.monotonic()
        if not self._frames.take(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self._settings.max_rate_hz} analytics frames per second",
                frame_id=frame.id,
            )
        live = self._hub.live
        validator = live.registry.validator(frame.schema)
        if validator is None:
            raise ProtocolError(
                ErrorCode.ANALYTICS_VERSION, _version_detail(frame.schema, live), frame_id=frame.id
            )
        try:
            result = validator.validate(frame.events)
        except ProtocolError as err:
            err.frame_id = frame.id
            raise
        assert self._guard is not None and self._principal is not None
        guard, received_at = self._guard, _epoch_ms()
        kept: list[messages.PublishedEvent] = []
        drops: dict[str, int] = {}
        categories: dict[Any, int] = {}
        seqs: list[int] = []
        for event in result.accepted:
            name = event.event_name
            seqs.append(event.seq)
            spec = taxonomy.EVENTS.get(name)
            categories[spec.category if spec else None] = (
                categories.get(spec.category if spec else None, 0) + 1
            )
            reason, rate = guard.decide(
                name, _tier(event.props) if spec and spec.tiered else None, now
            )
            if reason is None:
                # props stays the validator's struct: msgspec encodes it as the JSON object it
                # was decoded from, without a round trip through a dict.
                kept.append(
                    messages.PublishedEvent(
                        seq=event.seq,
                        name=name,
                        ts=event.ts,
                        props=event.props,
                        sample_rate=rate,
                        cohort=guard.cohort(name),
                    )
                )
            else:
                drops[reason] = drops.get(reason, 0) + 1
        _count_received(categories)
        if taxonomy.Category.COMBAT in categories:
            self.last_combat = now
        for rejection in result.rejected:
            metrics.REJECTED.labels(str(rejection.code)).inc()
            if rejection.seq is not None:
                seqs.append(rejection.seq)
        dropped = sum(drops.values())
        outbound = self._outbound(frame, kept, result.rejected, seqs, received_at)
        ack = frames.Ack(id=frame.id, accepted=len(kept), rejected=result.rejected, dropped=dropped)
        if not outbound:
            _count_drops(drops)
            self._send(frames.encode(ack))
            return
        try:
            future = self._hub.worker.submit(outbound, events=len(kept) + len(result.rejected))
        except Backpressure as err:
            metrics.DROP.labels(DropReason.BACKPRESSURE).inc(len(result.accepted))
            self._error(
                ErrorCode.BACKPRESSURE,
                err.detail,
                frame.id,
                retry_after_ms=self._settings.retry_after_ms,
            )
            return
        _count_drops(drops)
        future.add_done_callback(lambda f: self._settle(f, ack, len(kept)))

    def _outbound(
        self,
        frame: frames.AnalyticsFrame,
        kept: list[messages.PublishedEvent],
        rejected: list[frames.Rejection],
        seqs: list[int],
        received_at: int,
    ) -> list[Outbound]:
        guard, principal, hello = self._guard, self._principal, self._hello
        assert guard is not None and principal is not None and hello is not None
        if guard.opted_out:
            return []  # nothing from an opted-out session is stored, not even in the DLQ
        out: list[Outbound] = []
        player, guid = principal.player_uuid, self._client_guid
        if kept:
            batch = self._batch(
                kept,
                client_guid=guid,
                schema_version=frame.schema,
                received_at=received_at,
                envelope_id=frame.id,
            )
            out.append(
                Outbound(
                    messages.EVENTS_SUBJECT,
                    messages.encode_batch(batch),
                    messages.msg_id(player, guid, min(seqs), max(seqs)),
                )
            )
        for rejection in rejected:
            out.append(self._dlq(rejection, frame.schema, received_at))
        return out

    def _batch(
        self,
        events: list[messages.PublishedEvent],
        *,
        client_guid: str,
        schema_version: str,
        received_at: int,
        envelope_id: int | None = None,
    ) -> messages.EventBatch:
        """One JetStream message: `events` plus what the gateway knows of this session."""
        principal, hello = self._principal, self._hello
        assert principal is not None and hello is not None
        return messages.EventBatch(
            session_id=self.session_id,
            player_uuid=principal.player_uuid,
            client_guid=client_guid,
            schema_version=schema_version,
            received_at=received_at,
            events=events,
            client_ip=self._client_ip,
            shard=principal.shard or self._settings.shard,
            region=principal.region,
            build=hello.build or None,
            platform=hello.platform or None,
            latency_bucket=latency_bucket(self._rtt_ms),
            consent_social=self._consent.social,
            envelope_id=envelope_id,
        )

    def _dlq(self, rejection: frames.Rejection, schema: str, at: int) -> Outbound:
        assert self._principal is not None
        player, guid, seq = self._principal.player_uuid, self._client_guid, rejection.seq
        entry = messages.DlqEntry(
            source="gateway",
            reason=str(rejection.code),
            detail=rejection.detail,
            at=at,
            analytics_player_id=self._player_id(),
            client_guid=guid,
            schema_version=schema,
            event={"seq": seq} if seq is not None else None,
        )
        ident = (
            "dlq-" + messages.msg_id(player, guid, seq, seq)
            if seq is not None
            else uuid.uuid4().hex
        )
        return Outbound(messages.DLQ_SUBJECT, msgspec.json.encode(entry), ident)

    def _player_id(self) -> str:
        assert self._principal is not None
        today = datetime.datetime.now(datetime.UTC).date()
        if self._pid_day is None or self._pid_day[0] != today:
            self._pid_day = (today, self._hub.dlq_player_id(self._principal.player_uuid))
        return self._pid_day[1]

    def _settle(self, future: asyncio.Future[None], ack: frames.Ack, events: int) -> None:
        if future.cancelled() or future.exception() is not None:
            metrics.DROP.labels(DropReason.PUBLISH_FAILED).inc(events)
            self._error(
                ErrorCode.BACKPRESSURE,
                "event store did not acknowledge in time",
                ack.id,
                retry_after_ms=self._settings.retry_after_ms,
            )
            return
        self._send(frames.encode(ack))

    def _on_telemetry(self, frame: frames.Telemetry) -> None:
        """RTT feeds the latency bucket; snapshot sizes become `snapshot_size` heartbeat samples
        under the heartbeat rate, attributed to a per-installation telemetry stream id
        (uuid5 of the client_guid) with the receive time as seq, so they never collide with
        the client's own seqs."""
        now = time.monotonic()
        if not self._telemetry.take(now):
            return
        if frame.rtt_ms is not None:
            self._rtt_ms = frame.rtt_ms
        guard, principal, hello = self._guard, self._principal, self._hello
        if frame.snapshot_bytes is None or guard is None or principal is None or hello is None:
            return
        reason, rate = guard.decide("snapshot_size", None, now)
        if reason is not None:
            metrics.DROP.labels(reason).inc()
            return
        received_at = _epoch_ms()
        guid = str(uuid.uuid5(_TELEMETRY_NAMESPACE, self._client_guid))
        sample = messages.PublishedEvent(
            seq=received_at,
            name="snapshot_size",
            ts=received_at,
            props={"bytes": frame.snapshot_bytes},
            sample_rate=rate,
            cohort=guard.cohort("snapshot_size"),
        )
        batch = self._batch(
            [sample], client_guid=guid, schema_version=hello.schema, received_at=received_at
        )
        ident = messages.msg_id(principal.player_uuid, guid, received_at, received_at)
        outbound = [Outbound(messages.EVENTS_SUBJECT, messages.encode_batch(batch), ident)]
        with contextlib.suppress(Backpressure):  # a sample, not worth a refusal
            self._hub.worker.submit(outbound, events=1).add_done_callback(_ignore_outcome)

    # -- replies ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Queue a reply. A client with `max_outbox_frames` replies unread is not reading at
        all (its socket stays full): the connection is aborted rather than letting replies
        pile up in memory. Its unacked envelopes come back after a reconnect."""
        if self._outbox.qsize() < self._settings.max_outbox_frames:
            self._outbox.put_nowait(data)
            return
        if not self._choked:
            self._choked = True
            log.warning("session %s does not read its replies: aborting it", self.session_id)
            metrics.SESSIONS_ABORTED.labels("replies_unread").inc()
            self._ws.transport.abort()

    def _error(
        self,
        code: ErrorCode,
        detail: str,
        frame_id: int | None = None,
        *,
        retry_after_ms: int | None = None,
    ) -> None:
        error = frames.Error(
            code=str(code), detail=detail, id=frame_id, retry_after_ms=retry_after_ms
        )
        self._send(frames.encode(error))

    async def _refuse(
        self, code: ErrorCode, detail: str, close_code: int, frame_id: int | None = None
    ) -> None:
        self._error(code, detail, frame_id)
        await self._flush()  # the error goes out before the close frame
        with contextlib.suppress(Exception):
            await self._ws.close(close_code, detail[:120])

    async def _write(self) -> None:
        ws = self._ws
        while True:
            data = await self._outbox.get()
            if data is None:
                return
            try:
                await ws.send(data, text=True)
            except ConnectionClosed:
                return


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def _tier(props: object) -> object:
    if isinstance(props, dict):
        return props.get("tier")
    tier = getattr(props, "tier", None)
    return tier if isinstance(tier, str) else None


def _version_detail(version: str, live: LiveConfig) -> str:
    return f"schema: {version!r} is not accepted (accepted: {', '.join(live.registry.versions)})"


def _count_received(categories: dict[Any, int]) -> None:
    for category, count in categories.items():
        (_RECEIVED_UNKNOWN if category is None else _RECEIVED[category]).inc(count)


def _count_drops(drops: dict[str, int]) -> None:
    for reason, count in drops.items():
        metrics.DROP.labels(reason).inc(count)


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it
