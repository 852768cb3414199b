"""The operator's own metrics: reconciles by kind and outcome, and how long they take.

Served on the operator's metrics port with the process metrics, for the chart's Service.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from prometheus_client import Counter, Histogram

__all__ = ["RECONCILES", "RECONCILE_SECONDS", "reconciling"]

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
