"""The aggregator: JetStream consumer, dedup, enrichment, hot-store writes, DLQ and retries;
runs the storage maintenance (partitions, warm export, retentions) on a timer.
"""

from gameplay_analytics.runtime.aggregator.app import Aggregator, AggregatorStats, run_aggregator
from gameplay_analytics.runtime.aggregator.enrich import Enricher, PreparedMessage
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings

__all__ = [
    "Aggregator",
    "AggregatorSettings",
    "AggregatorStats",
    "Enricher",
    "PreparedMessage",
    "run_aggregator",
]
