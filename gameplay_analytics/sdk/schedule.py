"""When the client may send: new envelopes every flush interval (sooner when one is full),
at most one frame per 1/max_rate_hz, nothing while the gateway holds it back (`backpressure`,
`rate_limited`, jittered so refused clients do not resend in step, doubled for each refusal
not yet offset by an ack, refusals that arrive while held counting once), telemetry at most
`TELEMETRY_MAX_HZ`."""

from __future__ import annotations

import random
from collections.abc import Callable

from gameplay_analytics.contract import limits

__all__ = [
    "FLUSH_INTERVAL_S",
    "MAX_DOUBLINGS",
    "MAX_HOLD_S",
    "RATE_MARGIN",
    "RETRY_JITTER",
    "SendSchedule",
]

FLUSH_INTERVAL_S = 1.0 / limits.FLUSH_HZ
RATE_MARGIN = 1.05  # keep just under the gateway's limit despite timer jitter
RETRY_JITTER = 0.5  # a refused client waits retry_after × [1, 1.5): no synchronised resends
MAX_DOUBLINGS = 3  # refused again before acks: wait 2×, 4×, then 8× the server's hint
MAX_HOLD_S = 8.0  # ... but never longer than this (the hint's own ceiling is the gateway's)


class SendSchedule:
    """The pacing state of one client (times from its clock, in seconds)."""

    __slots__ = (
        "_clock",
        "_flush_interval",
        "_hold_until",
        "_jitter",
        "_last_new",
        "_last_send",
        "_last_telemetry",
        "_refusals",
        "_telemetry",
    )

    def __init__(self, flush_interval_s: float, clock: Callable[[], float], seed: str) -> None:
        self._clock = clock
        self._flush_interval = flush_interval_s
        self._last_send = float("-inf")
        self._last_new = float("-inf")
        self._hold_until = float("-inf")
        self._refusals = 0  # refusals not yet offset by acks
        self._jitter = random.Random(seed)
        self._telemetry: bytes | None = None
        self._last_telemetry = float("-inf")

    def now(self) -> float:
        return self._clock()

    def hold(self, delay_s: float) -> None:
        """The gateway asked to wait `delay_s`: send nothing before then (plus jitter), and
        twice as long for each refusal not yet offset by an ack (up to 8×, at most
        `MAX_HOLD_S`).

        A gateway past its capacity spends nearly as much on reading and refusing a frame as
        on taking one; clients that came back after every hint regardless kept it refusing
        until its goodput fell to a third of capacity (bench/overload_bench.py, 2,500
        clients). Backing off while refused lets the offered load settle at what it takes,
        and the events wait in the buffer, to go out in fuller envelopes.

        A refusal that comes while the client is already held is of an envelope it sent before
        the hold began (a gateway slow to reply refuses every envelope on the wire at once):
        the same refusal, so the wait neither doubles again nor moves. Counting each one
        held clients for 8× the hint after a single burst and left the gateway idle."""
        now = self._clock()
        if now < self._hold_until:
            return
        delay_s *= 2 ** min(self._refusals, MAX_DOUBLINGS)
        delay_s = min(delay_s, MAX_HOLD_S) * (1 + RETRY_JITTER * self._jitter.random())
        self._refusals += 1
        self._hold_until = now + delay_s

    def acked(self) -> None:
        """An envelope was taken: it offsets one refusal (the waits shrink as they grew)."""
        self._refusals = max(0, self._refusals - 1)

    def may_send(self, now: float, max_rate_hz: int) -> bool:
        return now >= self._hold_until and now - self._last_send >= RATE_MARGIN / max_rate_hz

    def new_envelope_due(self, now: float, *, buffered: int, max_events: int) -> bool:
        """A new envelope once the flush interval has passed, or as soon as one is full."""
        return buffered > 0 and (
            now - self._last_new >= self._flush_interval or buffered >= max_events
        )

    def next_new_at(self, max_rate_hz: int) -> float:
        """When the flush schedule next lets a new envelope go (the rate limit and a hold
        included); a transport that wakes then sends at the protocol's rate, not at the next
        multiple of its polling period."""
        return max(
            self._hold_until,
            self._last_send + RATE_MARGIN / max_rate_hz,
            self._last_new + self._flush_interval,
        )

    def sent(self, now: float, *, new: bool) -> None:
        self._last_send = now
        if new:
            self._last_new = now

    def telemetry(self, frame: bytes) -> None:
        """The latest telemetry frame; an older one not yet sent is replaced."""
        self._telemetry = frame

    def due_telemetry(self, now: float) -> bytes | None:
        frame = self._telemetry
        if frame is None or now - self._last_telemetry < 1.0 / limits.TELEMETRY_MAX_HZ:
            return None
        self._telemetry = None
        self._last_telemetry = now
        return frame
