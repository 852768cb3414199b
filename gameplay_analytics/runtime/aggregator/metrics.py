"""The aggregator's Prometheus metrics, in a registry of its own per instance.

A registry per instance lets the local stack run the gateway and the aggregator in one
process, and tests start several aggregators, without names clashing.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["AggregatorMetrics"]


class AggregatorMetrics:
    """Counters and gauges named as the design names them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.errors = Counter(
            "analytics_aggregator_errors_total",
            "Batch failures by kind (retried unless the kind says poison)",
            ["kind"], registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "analytics_aggregator_batch_seconds",
            "Time from fetch to ack of one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.e2e_latency = Histogram(
            "analytics_e2e_latency_seconds",
            "From the event's client timestamp (track) to its batch's commit and ack",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.persisted = Counter(
            "analytics_events_persisted_total", "Events newly stored in Postgres", registry=r
        )
        self.duplicates = Counter(
            "analytics_events_deduplicated_total",
            "Events not stored again because their key was already stored",
            registry=r,
        )
        self.dropped = Counter(
            "analytics_drop_total",
            "Events the server-side guard discarded (sampling, consent)",
            ["reason"], registry=r,
        )  # fmt: skip
        self.dlq = Counter(
            "analytics_dlq_total", "Messages and events sent to analytics.dlq", ["reason"],
            registry=r,
        )  # fmt: skip
        self.messages = Counter(
            "analytics_aggregator_messages_total", "JetStream messages acked", registry=r
        )
        self.lag = Gauge(
            "analytics_consumer_lag",
            "Messages in the stream the durable consumer has not delivered yet",
            registry=r,
        )
        self.ack_pending = Gauge(
            "analytics_consumer_ack_pending", "Messages delivered but not acked", registry=r
        )
        self.lag_seconds = Gauge(
            "analytics_consumer_lag_seconds",
            "Age of the oldest message the aggregators have not acked (0 when none is left)",
            registry=r,
        )
        self.pending_messages = Gauge(
            "analytics_consumer_pending_messages",
            "Messages the aggregators have not acked yet: undelivered plus unacked",
            registry=r,
        )

    def observe_committed(self, event_ms: Iterable[Sequence[int]], now_s: float) -> None:
        """Each committed event's track-to-commit latency, from event times in epoch ms. The
        start is the client's clock: a client ahead of the server counts as 0, not as a
        negative latency."""
        _observe_ages(self.e2e_latency, sorted(itertools.chain.from_iterable(event_ms)), now_s)


def _observe_ages(histogram: Histogram, times_ms: list[int], now_s: float) -> None:
    """`histogram.observe(max(0, now_s - t / 1000))` for every time of the sorted
    `times_ms`, as one increment per bucket: a batch holds tens of thousands of events, and
    one `observe` each (a lock and a bucket scan apiece) cost as much as a third of the COPY.
    An age is at most a bound exactly when its time is at least now minus the bound, so a
    binary search per bucket counts them. prometheus_client has no bulk call; this uses its
    long-stable bucket fields, and a test compares the result with `observe` one by one."""
    if not times_ms:
        return
    now_ms, total, below = now_s * 1000.0, len(times_ms), 0
    for index, bound in enumerate(histogram._upper_bounds):
        if math.isinf(bound):
            within = total
        else:
            within = total - bisect.bisect_left(times_ms, now_ms - bound * 1000.0)
        if within > below:
            histogram._buckets[index].inc(within - below)
            below = within
    past = bisect.bisect_right(times_ms, now_ms)  # the rest are ahead of now: age 0
    whole = math.floor(now_ms)
    ages_ms = (past * whole - sum(times_ms[:past])) + past * (now_ms - whole)
    histogram._sum.inc(ages_ms / 1000.0)
