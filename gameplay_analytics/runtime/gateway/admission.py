"""Admission of one more envelope into the ingest queue: the decision alone. Pure.

Room in the queue (`queue_capacity` events) bounds memory; it does not bound latency, since
how long a full queue takes to drain depends on how fast JetStream stores it (fsync, a busy
disk, a slow replica). So the gateway also refuses by *queueing delay*, CoDel-style: while the
store is busy (every write slot in flight) and the oldest envelope waiting for its JetStream
write has waited longer than `target_s`, a standing queue has formed, and a new envelope would
only wait behind it; it is refused with `backpressure` at once (the client keeps it and
resends after `retry_after_ms`). Every envelope the gateway takes is then written within about
the target, and acked one store round trip later.

Two delays are deliberately not counted. The store's own latency: refusing cannot take it
away, and counting it would refuse everything on a slow disk. And a wait with a write slot
free: then the store is not the bottleneck, the gateway's own event loop is (the publisher
has not run yet), and refusing would not help it, since reading and refusing a frame costs the
loop nearly what taking it does; it would only turn a slow loop into a collapse of goodput.
"""

from __future__ import annotations

import math

import msgspec

__all__ = [
    "DELAY", "DRAINING", "FULL", "RETRY_FLOOR_MS", "UNAVAILABLE", "DrainRate", "QueueState",
    "RetryLine", "refusal", "retry_after_ms",
]  # fmt: skip

DRAINING = "gateway is shutting down"
UNAVAILABLE = "event store unavailable"
FULL = "ingest queue full"
DELAY = "ingest queue delay over target"
RETRY_FLOOR_MS = 100  # one flush interval of the SDK (10 Hz): no shorter retry hint


class QueueState(msgspec.Struct, frozen=True, gc=False):
    """What admission looks at: the ingest queue and the store connection, at one instant.
    (A struct: two are made per frame, at a tenth of a frozen dataclass' cost.)"""

    depth: int  # events queued or awaiting a JetStream acknowledgement
    capacity: int  # queue_capacity
    head_wait_s: float  # how long the oldest envelope not yet written has waited (0: none)
    store_busy: bool = True  # every JetStream write slot is in flight
    draining: bool = False
    connected: bool = True


def refusal(state: QueueState, events: int, *, target_s: float) -> str | None:
    """Why an envelope of `events` cannot be taken now, or None to take it.

    An envelope is taken whole while the queue is below its capacity (the bound is exceeded
    by at most one envelope), and into an empty queue whatever its size, or it could never be
    stored. `target_s` of 0 turns the delay rule off (room alone decides).
    """
    if state.draining:
        return DRAINING
    if not state.connected:
        return UNAVAILABLE
    if state.depth and state.depth + events > state.capacity:
        return FULL
    if target_s > 0 and state.store_busy and state.head_wait_s > target_s:
        return DELAY
    return None


def retry_after_ms(reason: str, depth: int, drain_per_s: float | None, *, ceiling_ms: int) -> int:
    """The retry hint of a `backpressure` refusal for `reason`.

    For a full or standing queue: about the time it needs to drain at the rate it has been
    draining (`depth / drain_per_s`), between RETRY_FLOOR_MS and `ceiling_ms` (the setting
    `retry_after_ms`). A fixed hint of a second sends every client refused in one burst away
    for a second while the queue empties in a fraction of it: the gateway then idles, and the
    clients come back together. With no drain measured yet (None: a gateway meeting its first
    burst), RETRY_FLOOR_MS: a hint too short costs one more refusal (the SDK doubles its wait
    at each), one too long idles the gateway. Shutting down, the store away, or a store that
    drained nothing while busy: `ceiling_ms`.
    """
    floor = min(RETRY_FLOOR_MS, ceiling_ms)
    if reason not in (FULL, DELAY):
        return ceiling_ms
    if drain_per_s is None:
        return floor
    if drain_per_s <= 0:
        return ceiling_ms
    return max(floor, min(ceiling_ms, round(1000 * depth / drain_per_s)))


class DrainRate:
    """How fast the store drains the queue, in events/s while busy: a moving average with time
    constant `tau_s`, bias-corrected so that the first samples count in full.

    A plain average started at zero took seconds to reach the true rate, and `retry_after_ms`
    (depth over rate) meanwhile sent hints near the ceiling: a gateway meeting overload fresh
    (a restart, every client reconnecting) sent its first thousands of refused clients away
    for a second, which the SDK doubles at each refusal, and then idled."""

    __slots__ = ("_average", "_seen", "_tau_s")

    def __init__(self, tau_s: float) -> None:
        self._tau_s = tau_s
        self._average = 0.0
        self._seen = 0.0  # the weight the samples so far carry (1 - the prior's)

    @property
    def per_s(self) -> float | None:
        """The rate, or None before the first sample."""
        return self._average / self._seen if self._seen else None

    def sample(self, events: int, elapsed_s: float) -> None:
        """`events` stored in `elapsed_s` of a busy store."""
        if elapsed_s <= 0:
            return
        weight = 1.0 - math.exp(-elapsed_s / self._tau_s)
        self._average += weight * (events / elapsed_s - self._average)
        self._seen += weight * (1.0 - self._seen)


class RetryLine:
    """A line outside the door: each refused envelope is told to come back after the ones
    refused before it, not all at the time the queue drains.

    Under sustained overload the queue refills the moment it drains, so `retry_after_ms` alone
    gives everyone refused in one burst the same hint, they come back together, one queueful
    is taken and the rest refused again (bench/overload_bench.py at 5x: most frames read were
    refusals, each read at about the cost of taking one). Here the k-th refusal waits the
    queue's hint (`retry_after_ms`: its drain time) plus k envelopes of the average size taken
    (`take_s` each), up to the ceiling: the excess clients come back spread at the rate the
    queue drains, and their events wait in their buffers for a fuller envelope (the SDK's way:
    nothing is lost). Times are the caller's monotonic seconds."""

    __slots__ = ("_end",)

    def __init__(self) -> None:
        self._end = 0.0  # when the last client told to come back is due

    def place_ms(self, now: float, hint_ms: int, take_s: float, ceiling_ms: int) -> int:
        """The wait for one more refused envelope: the queue's own hint, or after the line if
        that is later; then this envelope's turn `take_s` joins the line."""
        ceiling = now + ceiling_ms / 1000
        turn = min(max(now + hint_ms / 1000, self._end), ceiling)
        self._end = min(turn + take_s, ceiling)
        return round(1000 * (turn - now))
