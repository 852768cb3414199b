"""The gateway's Prometheus metrics, named as the design names them.

Module-level collectors on the default registry (which also carries the process CPU and
memory collector); several gateways in one test process simply share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram

from gameplay_analytics.contract import frames, taxonomy
from gameplay_analytics.contract.errors import DropReason

__all__ = [
    "DROP",
    "ENVELOPES_REFUSED",
    "GROUP_ENVELOPES",
    "GROUP_WRITES",
    "PLAYERS_IN_COMBAT",
    "PUBLISH_LATENCY",
    "QUEUE_CAPACITY",
    "QUEUE_DEPTH",
    "RECEIVED",
    "REJECTED",
    "SCHEMA_HASH_MISMATCH",
    "SESSIONS_ABORTED",
    "SESSIONS_ACTIVE",
    "count_drops",
    "count_received",
    "count_rejected",
]


QUEUE_DEPTH = Gauge(
    "analytics_queue_depth", "Events queued for JetStream or awaiting its acknowledgement"
)
QUEUE_CAPACITY = Gauge(
    "analytics_queue_capacity", "The queue's bound (queue_capacity): depth over it is the fill"
)
DROP = Counter(
    "analytics_drop_total",
    "Events not published: server-side sampling/consent/opt-out, or refused envelopes",
    ["reason"],
)
RECEIVED = Counter(
    "analytics_events_received_total", "Valid events received, by category", ["category"]
)
REJECTED = Counter(
    "analytics_events_rejected_total", "Events refused by validation (sent to the DLQ)", ["code"]
)
PUBLISH_LATENCY = Histogram(
    "analytics_publish_latency_seconds",
    "From enqueue to JetStream acknowledgement of an envelope",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SESSIONS_ACTIVE = Gauge("analytics_sessions_active", "Connected sessions that sent a good hello")
SESSIONS_ABORTED = Counter(
    "analytics_sessions_aborted_total", "Sessions the gateway cut off, by reason", ["reason"]
)
SCHEMA_HASH_MISMATCH = Counter(
    "analytics_schema_hash_mismatch_total",
    "Sessions whose hello.schema_hash differs from the gateway's document for that schema "
    "version: a client build drifted from the registry (labels: accepted versions only)",
    ["schema"],
)
PLAYERS_IN_COMBAT = Gauge(
    "analytics_players_in_combat",
    "Sessions that sent a combat event within the combat window (the operator's combat load)",
)
ENVELOPES_REFUSED = Counter(
    "analytics_envelopes_refused_total",
    "Envelopes refused with backpressure or rate_limited (the client keeps and resends them)",
    ["code"],
)
_RECEIVED = {c: RECEIVED.labels(c.value) for c in taxonomy.Category}
_RECEIVED_UNKNOWN = RECEIVED.labels("unknown")


def count_received(categories: Mapping[taxonomy.Category | None, int]) -> None:
    for category, count in categories.items():
        (_RECEIVED_UNKNOWN if category is None else _RECEIVED[category]).inc(count)


def count_rejected(rejected: Iterable[frames.Rejection]) -> None:
    for rejection in rejected:
        REJECTED.labels(rejection.code).inc()


def count_drops(drops: Mapping[DropReason, int]) -> None:
    for reason, count in drops.items():
        DROP.labels(reason).inc(count)


GROUP_WRITES = Counter(
    "analytics_group_writes_total", "JetStream writes of the ingest publisher (group commits)"
)
GROUP_ENVELOPES = Histogram(
    "analytics_group_envelopes",
    "Envelopes carried by one JetStream write (group commit)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
