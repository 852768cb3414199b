"""AnalyticsClient: the transport-agnostic SDK core (PROTOCOL.md §1-2, client side).

`track()` samples, debounces and buffers an event in a few microseconds and never raises. The
transport asks `poll()` for frames to send (≤ one envelope per 1/max_rate_hz) and hands every
reply to `on_frame()`; `on_connected()` / `on_disconnected()` bracket each connection. A game
that owns its socket drives these itself; `WebSocketConnector` drives them otherwise.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from gameplay_analytics.contract import frames, limits, registry, taxonomy
from gameplay_analytics.contract.errors import ErrorCode
from gameplay_analytics.contract.limits import MAX_EVENT_BYTES, MAX_FRAME_BYTES
from gameplay_analytics.privacy.consent import Consent, allows
from gameplay_analytics.sampling import hashing
from gameplay_analytics.sampling.compiled import CompiledRules
from gameplay_analytics.sdk.buffer import DEFAULT_CAP_BYTES, PriorityBuffer
from gameplay_analytics.sdk.inflight import Envelope, InFlight
from gameplay_analytics.sdk.pending import DEFAULT_PENDING_CAP_BYTES, PendingEvents
from gameplay_analytics.sdk.state import SeqCounter
from gameplay_analytics.sdk.stats import Acked, ClientStats

__all__ = ["Acked", "AnalyticsClient", "ClientStats", "default_rules"]

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "1.0.0"
MAX_IN_FLIGHT = 8
"""Envelopes sent and not yet acknowledged before the client waits."""
RATE_LIMITED_RETRY_MS = 1000
FLUSH_INTERVAL_S = 1.0 / limits.FLUSH_HZ
_RATE_MARGIN = 1.05  # keep just under the gateway's limit despite timer jitter
_RETRY_JITTER = 0.5  # a refused client waits retry_after × [1, 1.5): no synchronised resends
_ENVELOPE_OVERHEAD = 128

_server_frames = msgspec.json.Decoder(
    frames.Welcome | frames.Ack | frames.Error | frames.SamplingFrame
)
_default_rules: CompiledRules | None = None


def default_rules() -> CompiledRules:
    """The shipped rules, used until the gateway's `welcome` brings the live ones."""
    global _default_rules
    if _default_rules is None:
        from gameplay_analytics import sampling

        _default_rules = sampling.compile(sampling.load_default_rules())
    return _default_rules


class _Event(msgspec.Struct, array_like=False):
    seq: int
    name: str
    ts: int
    props: dict[str, Any]


_encode = msgspec.json.Encoder().encode


@dataclasses.dataclass(frozen=True, slots=True)
class _Decision:
    keep: bool
    priority: int
    debounce_ns: int
    reason: str = ""


class AnalyticsClient:
    """One player's analytics on one installation.

    `token` is the session JWT or a callable returning a fresh one (called per connection).
    `state_dir` keeps the seq counter across restarts (omit it only for bots and tests), and
    the unacked lifecycle events (with `persist_everything`, every unacked event up to
    `pending_cap_bytes`): they are sent again after a crash. When the earlier run ended with
    a session open, `recovered_crash` is True and, with `report_crash`, a `session_crash`
    (`reason: unclean_exit`) is tracked at once.
    `flush_interval_s` is how often a new envelope goes out (sooner when one is full): the
    protocol's 10 Hz by default. The gateway group-commits the envelopes of many sessions into
    one durable JetStream write, so small envelopes no longer cost an fsync each.
    """

    def __init__(
        self,
        *,
        player_uuid: str | uuid.UUID,
        client_guid: str | uuid.UUID,
        token: str | Callable[[], str],
        state_dir: Path | None = None,
        schema: str = DEFAULT_SCHEMA,
        build: str = "",
        platform: str = "",
        consent: dict[str, bool] | None = None,
        buffer_cap_bytes: int = DEFAULT_CAP_BYTES,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        clock: Callable[[], float] = time.monotonic,
        on_ack: Callable[[Acked], None] | None = None,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        schema_hash: str | None = None,
        persist_everything: bool = False,
        pending_cap_bytes: int = DEFAULT_PENDING_CAP_BYTES,
        report_crash: bool = True,
    ) -> None:
        self.player_uuid = hashing.canonical_uuid(str(player_uuid))
        self.client_guid = str(uuid.UUID(str(client_guid)))
        self._token = token
        self.schema, self.build, self.platform = schema, build, platform
        self.schema_hash = schema_hash or registry.packaged_schema_hash(schema)
        self._consent_wire = dict(consent or {})
        self._consent = Consent.from_hello(self._consent_wire)
        self._seq = SeqCounter(self.client_guid, state_dir=state_dir)
        self._buffer = PriorityBuffer(buffer_cap_bytes)
        self._max_frame_bytes = max_frame_bytes
        self._clock = clock
        self._on_ack_hook = on_ack
        self.stats = ClientStats()
        self._rules = default_rules()
        self._multiplier = 1.0
        self._decisions: dict[tuple[str, object], _Decision] = {}
        self._last_at: dict[str, int] = {}
        self.max_events = limits.MAX_EVENTS_PER_ENVELOPE
        self.max_rate_hz = limits.MAX_RATE_HZ
        self.session_id: str | None = None
        self.sampling_version = self._rules.version
        self.connected = False
        self.welcomed = False
        self.unauthorized: str | None = None
        self.version_refused: str | None = None
        self._flight = InFlight()
        self._next_id = 1
        self._last_send = float("-inf")
        self._hold_until = float("-inf")
        self._flush_interval = flush_interval_s
        self._last_new = float("-inf")
        self._jitter = random.Random(self.client_guid)
        self._telemetry: bytes | None = None
        self._last_telemetry = float("-inf")
        self._pending: PendingEvents | None = None
        self.recovered_crash = False
        if state_dir is not None:
            self._recover(
                PendingEvents(
                    state_dir / f"pending-{self.client_guid}.json",
                    everything=persist_everything,
                    cap_bytes=pending_cap_bytes,
                ),
                report_crash=report_crash,
            )

    # -- the game's side -------------------------------------------------------------------

    def track(self, name: str, /, **props: Any) -> None:
        """Record one event. Never blocks, never raises; see `stats` for what became of it."""
        try:
            stats = self.stats
            stats.tracked += 1
            key = (name, props.get("tier"))
            decision = self._decisions.get(key)
            if decision is None:
                decision = self._decide(name, key[1])
                self._decisions[key] = decision
            if not decision.keep:
                if decision.reason == "sampled":
                    stats.sampled_out += 1
                elif decision.reason == "consent":
                    stats.opted_out += 1
                else:
                    stats.refused += 1
                return
            if decision.debounce_ns:
                now = time.monotonic_ns()
                last = self._last_at.get(name)
                if last is not None and now - last < decision.debounce_ns:
                    stats.debounced += 1
                    return
                self._last_at[name] = now
            seq = self._seq.next()
            data = _encode(_Event(seq, name, time.time_ns() // 1_000_000, props))
            if len(data) > MAX_EVENT_BYTES:
                stats.refused += 1
                return
            buffer = self._buffer
            before = buffer.count
            buffer.push(decision.priority, data)
            if buffer.count <= before:  # an eviction happened
                self._note_overflow()
            stats.buffered += 1
            pending = self._pending
            if pending is not None and pending.wants(decision.priority):
                pending.note_session(name)
                pending.add(seq, decision.priority, data)
        except Exception:  # the game loop must never see an analytics failure
            self.stats.errors += 1

    def telemetry(self, rtt_ms: float, snapshot_bytes: int) -> None:
        """The game's telemetry tick (PROTOCOL.md §1 `telemetry`): call it as often as you
        like; the latest values go out at most `TELEMETRY_MAX_HZ` times a second. Never raises."""
        try:
            if not self._consent.analytics:
                return
            frame = frames.Telemetry(
                rtt_ms=float(rtt_ms) if math.isfinite(rtt_ms) and rtt_ms >= 0 else None,
                snapshot_bytes=int(snapshot_bytes) if snapshot_bytes >= 0 else None,
            )
            self._telemetry = msgspec.json.encode(frame)
        except Exception:
            self.stats.errors += 1

    @property
    def multiplier(self) -> float:
        """The gateway's current sampling multiplier (1.0 unless it is overloaded)."""
        return self._multiplier

    @property
    def buffered_events(self) -> int:
        return len(self._buffer)

    @property
    def buffered_bytes(self) -> int:
        return self._buffer.size

    @property
    def pending_envelopes(self) -> int:
        return len(self._flight)

    @property
    def pending_events(self) -> int:
        """Events sent in envelopes not yet acknowledged (kept for a resend)."""
        return self._flight.events

    @property
    def idle(self) -> bool:
        """Nothing buffered and nothing awaiting an ack."""
        return not self._buffer.count and not self._flight

    # -- the transport's side --------------------------------------------------------------

    def on_connected(self) -> bytes:
        """A connection is up: returns the `hello` frame to send first."""
        self.connected, self.welcomed, self.unauthorized = True, False, None
        token = self._token() if callable(self._token) else self._token
        hello = {
            "type": "hello",
            "token": token,
            "client_guid": self.client_guid,
            "schema": self.schema,
            "build": self.build,
            "platform": self.platform,
            "consent": self._consent_wire,
        }
        if self.schema_hash is not None:
            hello["schema_hash"] = self.schema_hash
        return msgspec.json.encode(hello)

    def on_disconnected(self) -> None:
        """The connection is gone: every unacked envelope will be resent, unchanged."""
        self.connected = self.welcomed = False
        self._flight.disconnected()

    def on_frame(self, data: bytes | str) -> bool:
        """Handle one frame from the gateway; False when it is not an analytics frame (a game
        sharing its socket passes everything here and handles what comes back False)."""
        try:
            frame = _server_frames.decode(data)
        except msgspec.MsgspecError:
            return False
        try:
            if isinstance(frame, frames.Ack):
                self._on_ack(frame)
            elif isinstance(frame, frames.Error):
                self._on_error(frame)
            elif isinstance(frame, frames.Welcome):
                self._on_welcome(frame)
            else:
                self._set_rules(frame.sampling, frame.multiplier)
        except Exception:
            log.exception("analytics: could not apply a %s frame", type(frame).__name__)
            self.stats.errors += 1
        return True

    def poll(self, now: float | None = None) -> list[bytes]:
        """Frames to send now: a resend first, else a new envelope once `flush_interval_s` has
        passed (or the buffer fills one); at most one frame per 1/max_rate_hz, none while held
        back by `backpressure` or `rate_limited` (whose wait is jittered)."""
        if self._pending is not None:
            self._pending.flush()  # acks settled since the last poll, or non-lifecycle adds
        if not self.welcomed:
            return []
        now = self._clock() if now is None else now
        out = self._due_telemetry(now)
        if self.version_refused is not None:
            return out
        if now < self._hold_until or now - self._last_send < _RATE_MARGIN / self.max_rate_hz:
            return out
        envelope = self._flight.next_resend()
        if envelope is not None:
            self.stats.envelopes_resent += 1
        elif (
            self._buffer.count
            and self._flight.on_the_wire < MAX_IN_FLIGHT
            and (
                now - self._last_new >= self._flush_interval
                or self._buffer.count >= self.max_events
            )
        ):
            envelope = self._new_envelope()
            self._last_new = now
        else:
            return out
        self._flight.sent(envelope)
        self._last_send = now
        self.stats.envelopes_sent += 1
        out.append(envelope.frame)
        return out

    # -- private ---------------------------------------------------------------------------

    def _due_telemetry(self, now: float) -> list[bytes]:
        frame = self._telemetry
        if frame is None or now - self._last_telemetry < 1.0 / limits.TELEMETRY_MAX_HZ:
            return []
        self._telemetry = None
        self._last_telemetry = now
        self.stats.telemetry_sent += 1
        return [frame]

    def _decide(self, name: str, tier: object) -> _Decision:
        if self.version_refused is not None:
            return _Decision(False, 0, 0, "version")
        spec = taxonomy.spec_for(name)
        if spec is None:
            return _Decision(False, 0, 0, "unknown")
        if not allows(self._consent, spec):
            return _Decision(False, 0, 0, "consent")  # opt-out: not even buffered
        props = {"tier": tier} if spec.tiered and tier is not None else None
        keep, _ = self._rules.should_keep(
            self.player_uuid, name, props=props, multiplier=self._multiplier
        )
        debounce_ns = self._rules.debounce(name) * 1_000_000
        return _Decision(keep, int(spec.priority), debounce_ns, "" if keep else "sampled")

    def _new_envelope(self) -> Envelope:
        events = self._buffer.take(
            max_events=self.max_events, max_bytes=self._max_frame_bytes - _ENVELOPE_OVERHEAD
        )
        ident = self._next_id
        self._next_id += 1
        head = b'{"type":"analytics","id":%d,"schema":%s,"events":[' % (
            ident,
            msgspec.json.encode(self.schema),
        )
        frame = head + b",".join(events) + b"]}"
        self._buffer.reserved += len(frame)
        return Envelope(ident, frame, len(events))

    def _forget(self, envelope: Envelope) -> None:
        """The envelope is settled for good (acked, or refused as malformed)."""
        self._buffer.reserved -= len(envelope.frame)
        pending = self._pending
        if pending is not None and len(pending):
            pending.settle(list(envelope.seqs()))

    def _recover(self, pending: PendingEvents, *, report_crash: bool) -> None:
        """Put an earlier run's unacked events back in the buffer, unchanged."""
        self._pending = pending
        for priority, event in pending.recovered():
            self._buffer.push(priority, event)
            self.stats.recovered += 1
        self.recovered_crash = pending.session_open
        if self.recovered_crash and report_crash:
            self.track("session_crash", reason="unclean_exit")

    def _on_welcome(self, welcome: frames.Welcome) -> None:
        self.session_id = welcome.session_id
        self.max_events = welcome.max_events_per_envelope
        self.max_rate_hz = max(1, welcome.max_rate_hz)
        # Welcomed even if the rules cannot be read (a newer wire version): the old rules stay
        # and the gateway's guard samples anyway; a client that never sends loses more.
        self.welcomed = True
        self._set_rules(welcome.sampling, welcome.multiplier)

    def _set_rules(self, wire: dict[str, Any], multiplier: float) -> None:
        rules = CompiledRules.from_wire(wire)
        if rules != self._rules or multiplier != self._multiplier:
            self._rules, self._multiplier = rules, multiplier
            self.sampling_version = rules.version
            self._decisions.clear()

    def _on_ack(self, ack: frames.Ack) -> None:
        envelope = self._flight.settle(ack.id)
        if envelope is None:
            return  # an ack for an envelope already settled (a resend raced it)
        self._forget(envelope)
        stats = self.stats
        stats.envelopes_acked += 1
        stats.events_acked += ack.accepted
        stats.events_rejected += len(ack.rejected)
        stats.events_dropped_by_server += ack.dropped
        for rejection in ack.rejected:
            log.warning("analytics: event seq %s rejected: %s", rejection.seq, rejection.detail)
        if self._on_ack_hook is not None:
            seqs = envelope.seqs()
            rejected = tuple(r.seq for r in ack.rejected if r.seq is not None)
            self._on_ack_hook(Acked(ack.id, seqs, rejected, ack.accepted, ack.dropped))

    def _on_error(self, error: frames.Error) -> None:
        code = error.code
        envelope = self._flight.settle(error.id) if error.id is not None else None
        if code in (ErrorCode.BACKPRESSURE, ErrorCode.RATE_LIMITED):
            delay_s = (error.retry_after_ms or RATE_LIMITED_RETRY_MS) / 1000
            delay_s *= 1 + _RETRY_JITTER * self._jitter.random()
            self._hold_until = max(self._hold_until, self._clock() + delay_s)
            if code == ErrorCode.BACKPRESSURE:
                self.stats.backpressure += 1
            else:
                self.stats.rate_limited += 1
            if envelope is not None:
                self._flight.requeue(envelope)  # kept and resent unchanged
        elif code == ErrorCode.ANALYTICS_VERSION:
            self.version_refused = error.detail
            self._decisions.clear()
            log.error("analytics: schema %s refused by the gateway: %s", self.schema, error.detail)
            if envelope is not None:
                self._flight.requeue(envelope)
        elif code == ErrorCode.UNAUTHORIZED:
            self.unauthorized = error.detail
            if envelope is not None:
                self._flight.requeue(envelope)
        else:  # bad_request: resending the same bytes cannot succeed
            if envelope is not None:
                self._forget(envelope)
                self.stats.envelopes_refused += 1
            log.error("analytics: gateway refused a frame (%s): %s", code, error.detail)

    def _note_overflow(self) -> None:
        dropped = self._buffer.dropped
        self.stats.overflow = collections.Counter({p.name.lower(): n for p, n in dropped.items()})
        total = sum(dropped.values())
        if total & (total - 1) == 0:  # 1, 2, 4, 8, …: a trail, not a flood
            log.warning(
                "analytics buffer full: %d events dropped so far (%s)",
                total,
                dict(self.stats.overflow),
            )
