"""AnalyticsClient: the transport-agnostic SDK core (PROTOCOL.md §1-2, client side).

`track()` samples, debounces and buffers an event in a few microseconds and never raises. The
transport asks `poll()` for frames to send (≤ one envelope per 1/max_rate_hz) and hands every
reply to `on_frame()`; `on_connected()` / `on_disconnected()` bracket each connection. A game
that owns its socket drives these itself; `WebSocketConnector` drives them otherwise.
"""

from __future__ import annotations

import collections
import logging
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from gameplay_analytics.contract import frames, limits, registry
from gameplay_analytics.contract.errors import ErrorCode
from gameplay_analytics.contract.limits import MAX_EVENT_BYTES, MAX_FRAME_BYTES
from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.sampling import hashing
from gameplay_analytics.sampling.compiled import CompiledRules
from gameplay_analytics.sdk.buffer import DEFAULT_CAP_BYTES
from gameplay_analytics.sdk.decisions import EventGate, default_rules
from gameplay_analytics.sdk.outbox import Outbox
from gameplay_analytics.sdk.pending import DEFAULT_PENDING_CAP_BYTES, PendingEvents
from gameplay_analytics.sdk.schedule import FLUSH_INTERVAL_S, SendSchedule
from gameplay_analytics.sdk.state import SeqCounter
from gameplay_analytics.sdk.stats import Acked, ClientStats

__all__ = ["FLUSH_INTERVAL_S", "Acked", "AnalyticsClient", "ClientStats", "default_rules"]

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "1.0.0"
MAX_IN_FLIGHT = 8
"""Envelopes sent and not yet acknowledged before the client waits."""
RATE_LIMITED_RETRY_MS = 1000
_WAKE_MARGIN_S = 0.001  # poll_delay: wake just after the due time, never just before it

_server_frames = msgspec.json.Decoder(
    frames.Welcome | frames.Ack | frames.Error | frames.SamplingFrame
)


class _Event(msgspec.Struct, array_like=False):
    seq: int
    name: str
    ts: int
    props: dict[str, Any]


_encode = msgspec.json.Encoder().encode


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
        self._gate = EventGate(self.player_uuid, self._consent)
        self._outbox = Outbox(buffer_cap_bytes, schema)
        self._schedule = SendSchedule(flush_interval_s, clock, self.client_guid)
        self._max_frame_bytes = max_frame_bytes
        self._on_ack_hook = on_ack
        self.stats = ClientStats()
        self.max_events = limits.MAX_EVENTS_PER_ENVELOPE
        self.max_rate_hz = limits.MAX_RATE_HZ
        self.session_id: str | None = None
        self.sampling_version = self._gate.rules.version
        self.connected = False
        self.welcomed = False
        self.unauthorized: str | None = None
        self.version_refused: str | None = None
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
            decision = self._gate.decide(name, props.get("tier"))
            if not decision.keep:
                if decision.reason == "sampled":
                    stats.sampled_out += 1
                elif decision.reason == "consent":
                    stats.opted_out += 1
                else:
                    stats.refused += 1
                return
            if decision.debounce_ns and self._gate.debounced(name, decision.debounce_ns):
                stats.debounced += 1
                return
            seq = self._seq.next()
            data = _encode(_Event(seq, name, time.time_ns() // 1_000_000, props))
            if len(data) > MAX_EVENT_BYTES:
                stats.refused += 1
                return
            if self._outbox.add(decision.priority, seq, name, data):
                self._note_overflow()
            stats.buffered += 1
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
            self._schedule.telemetry(msgspec.json.encode(frame))
        except Exception:
            self.stats.errors += 1

    @property
    def multiplier(self) -> float:
        """The gateway's current sampling multiplier (1.0 unless it is overloaded)."""
        return self._gate.multiplier

    @property
    def buffered_events(self) -> int:
        return len(self._outbox.buffer)

    @property
    def buffered_bytes(self) -> int:
        return self._outbox.buffer.size

    @property
    def pending_envelopes(self) -> int:
        return len(self._outbox.flight)

    @property
    def pending_events(self) -> int:
        """Events sent in envelopes not yet acknowledged (kept for a resend)."""
        return self._outbox.flight.events

    @property
    def idle(self) -> bool:
        """Nothing buffered and nothing awaiting an ack."""
        return not self._outbox.buffer.count and not self._outbox.flight

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
        self._outbox.flight.disconnected()

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
        outbox, schedule = self._outbox, self._schedule
        outbox.flush_pending()  # acks settled since the last poll, or non-lifecycle adds
        if not self.welcomed:
            return []
        now = schedule.now() if now is None else now
        out = []
        telemetry = schedule.due_telemetry(now)
        if telemetry is not None:
            self.stats.telemetry_sent += 1
            out.append(telemetry)
        if self.version_refused is not None or not schedule.may_send(now, self.max_rate_hz):
            return out
        new = False
        envelope = outbox.flight.next_resend()
        if envelope is not None:
            self.stats.envelopes_resent += 1
        elif outbox.flight.on_the_wire < MAX_IN_FLIGHT and schedule.new_envelope_due(
            now, buffered=outbox.buffer.count, max_events=self.max_events
        ):
            envelope = outbox.envelope(
                max_events=self.max_events, max_frame_bytes=self._max_frame_bytes
            )
            new = True
        else:
            return out
        outbox.flight.sent(envelope)
        schedule.sent(now, new=new)
        self.stats.envelopes_sent += 1
        out.append(envelope.frame)
        return out

    def poll_delay(self, ceiling_s: float) -> float:
        """How long a transport may sleep before its next `poll()`: until the flush schedule
        lets the next new envelope go, at most `ceiling_s` (acks, resends, a full buffer), and
        `ceiling_s` when nothing is scheduled (an empty buffer, a full window)."""
        wait = self._schedule.next_new_at(self.max_rate_hz) - self._schedule.now()
        return min(ceiling_s, wait + _WAKE_MARGIN_S) if wait > 0 else ceiling_s

    # -- private ---------------------------------------------------------------------------

    def _recover(self, pending: PendingEvents, *, report_crash: bool) -> None:
        """Put an earlier run's unacked events back in the buffer, unchanged."""
        self.stats.recovered += self._outbox.recover(pending)
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
        if self._gate.set_rules(rules, multiplier):
            self.sampling_version = rules.version

    def _on_ack(self, ack: frames.Ack) -> None:
        envelope = self._outbox.flight.settle(ack.id)
        if envelope is None:
            return  # an ack for an envelope already settled (a resend raced it)
        self._outbox.forget(envelope)
        self._schedule.acked()
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
        flight = self._outbox.flight
        envelope = flight.settle(error.id) if error.id is not None else None
        if code in (ErrorCode.BACKPRESSURE, ErrorCode.RATE_LIMITED):
            self._schedule.hold((error.retry_after_ms or RATE_LIMITED_RETRY_MS) / 1000)
            if code == ErrorCode.BACKPRESSURE:
                self.stats.backpressure += 1
            else:
                self.stats.rate_limited += 1
            if envelope is not None:
                flight.requeue(envelope)  # kept and resent unchanged
        elif code == ErrorCode.ANALYTICS_VERSION:
            self.version_refused = error.detail
            self._gate.refuse()
            log.error("analytics: schema %s refused by the gateway: %s", self.schema, error.detail)
            if envelope is not None:
                flight.requeue(envelope)
        elif code == ErrorCode.UNAUTHORIZED:
            self.unauthorized = error.detail
            if envelope is not None:
                flight.requeue(envelope)
        else:  # bad_request: resending the same bytes cannot succeed
            if envelope is not None:
                self._outbox.forget(envelope)
                self.stats.envelopes_refused += 1
            log.error("analytics: gateway refused a frame (%s): %s", code, error.detail)

    def _note_overflow(self) -> None:
        dropped = self._outbox.buffer.dropped
        self.stats.overflow = collections.Counter({p.name.lower(): n for p, n in dropped.items()})
        total = sum(dropped.values())
        if total & (total - 1) == 0:  # 1, 2, 4, 8, …: a trail, not a flood
            log.warning(
                "analytics buffer full: %d events dropped so far (%s)",
                total,
                dict(self.stats.overflow),
            )
