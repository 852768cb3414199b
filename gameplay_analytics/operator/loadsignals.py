"""Load signals for the adaptive heartbeat controller, read from Prometheus' HTTP API.

`signal_queries` is pure (PromQL per signal for one pipeline); `read_signals` asks
Prometheus with a bounded timeout and raises `PrometheusUnavailable` when it cannot answer,
so the caller keeps the last rate and reports Degraded.
"""

from __future__ import annotations

import math
import string
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from gameplay_analytics.operator.manifests import Pipeline, object_names
from gameplay_analytics.sampling import LoadSignals

__all__ = ["PrometheusUnavailable", "cpu_cores", "query", "read_signals", "signal_queries"]


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered with an error; the message says which."""


def cpu_cores(quantity: str | int | None) -> float | None:
    """Kubernetes CPU quantity → cores ("500m" → 0.5, 2 → 2.0); None when unset."""
    if quantity is None:
        return None
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def signal_queries(pipeline: Pipeline) -> dict[str, str]:
    """PromQL for each signal, each giving a ratio in [0, 1] (one sample, or none)."""
    spec = pipeline.spec
    gateway = object_names(pipeline.name).gateway
    where = f'namespace="{pipeline.namespace}",job="{gateway}"'
    resources = spec.gateway.resources
    cores = cpu_cores(resources.limits.cpu) or cpu_cores(resources.requests.cpu) or 1.0
    combat = string.Template(spec.monitoring.combat_load_query).safe_substitute(
        namespace=pipeline.namespace, pipeline=pipeline.name
    )
    return {
        "gatewayCpu": f"avg(rate(process_cpu_seconds_total{{{where}}}[1m])) / {cores:g}",
        "queueFill": f"max(analytics_queue_depth{{{where}}} / analytics_queue_capacity{{{where}}})",
        "combatLoad": combat,
    }


async def query(
    session: aiohttp.ClientSession, base_url: str, promql: str, *, timeout_s: float
) -> float | None:
    """One instant query; None when the result is empty or not a number."""
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        async with session.get(
            url, params={"query": promql}, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            body: Mapping[str, Any] = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PrometheusUnavailable(
            f"Prometheus at {base_url} did not answer: {exc or type(exc).__name__}"
        ) from None
    if body.get("status") != "success":
        raise PrometheusUnavailable(
            f"Prometheus at {base_url} refused {promql!r}: {body.get('error', 'no reason')}"
        )
    return _number(body.get("data", {}))


async def read_signals(
    pipeline: Pipeline, *, at: float | None = None
) -> tuple[LoadSignals, dict[str, float | None]]:
    """The controller's inputs and every figure read (for status), by signal name."""
    url = pipeline.spec.monitoring.prometheus_url
    if url is None:
        raise PrometheusUnavailable("spec.monitoring.prometheusUrl is not set")
    timeout_s = pipeline.spec.monitoring.query_timeout_seconds
    figures: dict[str, float | None] = {}
    async with aiohttp.ClientSession() as session:
        for name, promql in signal_queries(pipeline).items():
            figures[name] = await query(session, url, promql, timeout_s=timeout_s)
    signals = LoadSignals(
        gateway_cpu=figures["gatewayCpu"],
        combat_load=figures["combatLoad"],
        at=time.time() if at is None else at,
    )
    return signals, figures


def _number(data: Mapping[str, Any]) -> float | None:
    kind, result = data.get("resultType"), data.get("result")
    sample: Any = None
    if kind == "scalar":
        sample = result
    elif kind == "vector" and isinstance(result, list) and result:
        sample = result[0].get("value")
    if not isinstance(sample, list) or len(sample) != 2:
        return None
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
