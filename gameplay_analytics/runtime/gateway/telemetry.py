"""Client `telemetry` frames: the RTT bucket stamped on batches, and snapshot-size samples.

Snapshot sizes become `snapshot_size` heartbeat samples under the heartbeat rate, attributed to
a per-installation telemetry stream id (uuid5 of the client_guid) with the receive time as seq,
so they never collide with the client's own seqs. Pure: the caller publishes and counts.
"""

from __future__ import annotations

import uuid

from gameplay_analytics.contract import frames, messages
from gameplay_analytics.contract.errors import DropReason
from gameplay_analytics.privacy.edge import PlayerEdge
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.handshake import SessionContext
from gameplay_analytics.runtime.gateway.ingest import Outbound
from gameplay_analytics.runtime.gateway.intake import event_batch

__all__ = ["latency_bucket", "snapshot_sample"]

_TELEMETRY_NAMESPACE = uuid.UUID("6f1c1d0e-8a51-4a8e-9e9e-7a1e1e7e1e7e")
_LATENCY_BUCKETS = (
    (50.0, "<50ms"),
    (100.0, "50-100ms"),
    (200.0, "100-200ms"),
    (500.0, "200-500ms"),
)


def latency_bucket(rtt_ms: float | None) -> str | None:
    """The RTT bucket stamped on batches, from the client's last `telemetry`."""
    if rtt_ms is None:
        return None
    for bound, label in _LATENCY_BUCKETS:
        if rtt_ms < bound:
            return label
    return "500ms+"


def snapshot_sample(
    frame: frames.Telemetry,
    ctx: SessionContext,
    guard: SamplingGuard,
    *,
    now: float,
    received_at: int,
    latency: str | None,
    edge: PlayerEdge,
) -> Outbound | DropReason | None:
    """The message storing the frame's snapshot size, the reason it is not kept, or None when
    the frame carries no snapshot size."""
    if frame.snapshot_bytes is None:
        return None
    reason, rate = guard.decide("snapshot_size", None, now)
    if reason is not None:
        return reason
    guid = str(uuid.uuid5(_TELEMETRY_NAMESPACE, ctx.client_guid))
    sample = messages.PublishedEvent(
        seq=received_at,
        name="snapshot_size",
        ts=received_at,
        props={"bytes": frame.snapshot_bytes},
        sample_rate=rate,
        cohort=guard.cohort("snapshot_size"),
    )
    batch = event_batch(
        ctx,
        [sample],
        edge=edge,
        client_guid=guid,
        schema_version=ctx.schema,
        received_at=received_at,
        latency=latency,
    )
    ident = messages.msg_id(edge.profile_key, guid, received_at, received_at)
    return Outbound(ctx.events_subject, messages.encode_batch(batch), ident)
