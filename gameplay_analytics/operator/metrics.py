"""The operator's own metrics: reconciles by kind and outcome, and how long they take.

Served on the operator's metrics port with the process metrics, for the chart's Service.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Mapping

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "HEARTBEAT_RATE",
    "LOAD_SIGNAL",
    "LOAD_SIGNAL_FAILURES",
    "RECONCILES",
    "RECONCILE_SECONDS",
    "heartbeat_stepped",
    "reconciling",
]

RECONCILES = Counter(
    "analytics_operator_reconciles_total",
    "Reconciles of the operator's resources, by kind and outcome (ok, error)",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "analytics_operator_reconcile_seconds",
    "How long one reconcile took, by kind",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


@contextlib.asynccontextmanager
async def reconciling(kind: str) -> AsyncIterator[None]:
    """Count and time one reconcile of `kind`; an exception counts as an error and propagates
    (kopf retries it)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


HEARTBEAT_RATE = Gauge(
    "analytics_operator_heartbeat_rate",
    "The adaptive heartbeat sampling rate the operator last set, by pipeline",
    ["namespace", "pipeline"],
)
LOAD_SIGNAL = Gauge(
    "analytics_operator_load_signal",
    "The load signals the heartbeat controller last read (ratios), by pipeline and signal",
    ["namespace", "pipeline", "signal"],
)
LOAD_SIGNAL_FAILURES = Counter(
    "analytics_operator_load_signal_failures_total",
    "Controller steps that kept the rate because Prometheus could not answer",
    ["namespace", "pipeline"],
)


def heartbeat_stepped(
    namespace: str, pipeline: str, *, rate: float, figures: Mapping[str, float | None]
) -> None:
    """Export one controller step: the rate set and the figures it was set from (the why;
    the sentence itself is in the pipeline's status)."""
    HEARTBEAT_RATE.labels(namespace, pipeline).set(rate)
    for signal, value in figures.items():
        LOAD_SIGNAL.labels(namespace, pipeline, signal).set(math.nan if value is None else value)
