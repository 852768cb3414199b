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

import msgspec

__all__ = [
    "DELAY", "DRAINING", "FULL", "RETRY_FLOOR_MS", "UNAVAILABLE", "QueueState", "refusal",
    "retry_after_ms",
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


def retry_after_ms(reason: str, depth: int, drain_per_s: float, *, ceiling_ms: int) -> int:
    """The retry hint of a `backpressure` refusal for `reason`.

    For a full or standing queue: about the time it needs to drain at the rate it has been
    draining (`depth / drain_per_s`), between RETRY_FLOOR_MS and `ceiling_ms` (the setting
    `retry_after_ms`). A fixed hint of a second sends every client refused in one burst away
    for a second while the queue empties in a fraction of it: the gateway then idles, and the
    clients come back together. Otherwise (shutting down, store away, or no drain measured
    yet): `ceiling_ms`.
    """
    if reason not in (FULL, DELAY) or drain_per_s <= 0:
        return ceiling_ms
    return max(min(RETRY_FLOOR_MS, ceiling_ms), min(ceiling_ms, round(1000 * depth / drain_per_s)))
