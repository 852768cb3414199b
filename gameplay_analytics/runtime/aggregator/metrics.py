"""The aggregator's Prometheus metrics, in a registry of its own per instance.

A registry per instance lets the local stack run the gateway and the aggregator in one
process, and tests start several aggregators, without names clashing.
"""

from __future__ import annotations

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
