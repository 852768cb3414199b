"""What became of tracked events (`ClientStats`) and of one acknowledged envelope (`Acked`)."""

from __future__ import annotations

import collections
import dataclasses

__all__ = ["Acked", "ClientStats"]


@dataclasses.dataclass(slots=True)
class ClientStats:
    """What happened to tracked events, for the game's own telemetry and the tests."""

    tracked: int = 0
    buffered: int = 0
    sampled_out: int = 0
    debounced: int = 0
    opted_out: int = 0
    refused: int = 0  # unknown event name, too large, or analytics_version refused
    errors: int = 0
    recovered: int = 0  # unacked events of an earlier run, back in the buffer at start
    envelopes_sent: int = 0
    envelopes_resent: int = 0
    envelopes_acked: int = 0
    events_acked: int = 0
    events_rejected: int = 0
    events_dropped_by_server: int = 0
    envelopes_refused: int = 0  # bad_request: dropped, a client bug
    backpressure: int = 0
    rate_limited: int = 0
    telemetry_sent: int = 0
    overflow: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass(frozen=True, slots=True)
class Acked:
    """What one `ack` settled, for callers that reconcile (the load harness, tests): the seqs
    of the envelope, those the gateway rejected, and how many its guard dropped."""

    envelope_id: int
    seqs: tuple[int, ...]
    rejected: tuple[int, ...]
    accepted: int
    dropped: int
