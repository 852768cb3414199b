"""Watch a load run from outside: the SDKs' counters and the pipeline's /metrics, once a second.

Every sample is cumulative (counters) or instantaneous (gauges) as scraped; rates come from
deltas between samples, so a gateway that was already busy before the run does not skew them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from gameplay_analytics.loadgen.harness import LoadResult

__all__ = ["MetricsWatch", "Sample", "metric_totals"]

_SCRAPE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Sample:
    """One observation, `at` in Unix seconds; gateway/aggregator fields are None when their
    metrics URL is unknown or did not answer."""

    at: float
    offered: int  # events the SDKs kept for sending (after source sampling and consent)
    acked: int  # events the gateway acked as stored in JetStream
    loadgen_cpu_s: float
    loop_lag_s: float  # how late the load generator's own event loop woke up
    gateway_cpu_s: float | None = None
    queue_depth: float | None = None
    drops: float | None = None
    received: float | None = None
    persisted: float | None = None
    consumer_lag: float | None = None
    batch_seconds: float | None = None  # the aggregators' batch time so far (fetch → ack)
    batches: float | None = None
    drops_by_reason: dict[str, float] = field(default_factory=dict)


def metric_totals(url: str) -> dict[str, float]:
    """Sum of every sample per metric name (and per `name{label=value}`) at a /metrics URL."""
    with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as reply:
        text = reply.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            for key, value in sample.labels.items():
                name = f"{sample.name}{{{key}={value}}}"
                totals[name] = totals.get(name, 0.0) + sample.value
    return totals


def _by_label(totals: dict[str, float], name: str, label: str) -> dict[str, float]:
    prefix = f"{name}{{{label}="
    return {k[len(prefix) : -1]: v for k, v in totals.items() if k.startswith(prefix)}


@dataclass
class MetricsWatch:
    """Samples `result` and the metrics URLs every `interval_s` while running as a task."""

    result: LoadResult
    gateway_url: str | None = None
    aggregator_urls: Sequence[str] = ()
    interval_s: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loadgen-metrics-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.samples.append(await self.sample(loop_lag_s=0.0))

    async def sample(self, *, loop_lag_s: float) -> Sample:
        gateway = await self._scrape(self.gateway_url) if self.gateway_url else None
        aggregated: dict[str, float] | None = None
        for url in self.aggregator_urls:
            totals = await self._scrape(url)
            if totals is not None:
                aggregated = aggregated or {}
                for key, value in totals.items():
                    aggregated[key] = aggregated.get(key, 0.0) + value
        lag = None
        if aggregated is not None:
            lag = aggregated.get("analytics_consumer_lag", 0.0) + aggregated.get(
                "analytics_consumer_ack_pending", 0.0
            )
        return Sample(
            at=time.time(),
            offered=self.result.total("buffered"),
            acked=self.result.total("events_acked"),
            loadgen_cpu_s=time.process_time(),
            loop_lag_s=loop_lag_s,
            gateway_cpu_s=gateway.get("process_cpu_seconds_total") if gateway else None,
            queue_depth=gateway.get("analytics_queue_depth") if gateway else None,
            drops=gateway.get("analytics_drop_total", 0.0) if gateway else None,
            received=gateway.get("analytics_events_received_total", 0.0) if gateway else None,
            persisted=aggregated.get("analytics_events_persisted_total", 0.0)
            if aggregated
            else None,
            consumer_lag=lag,
            batch_seconds=aggregated.get("analytics_aggregator_batch_seconds_sum")
            if aggregated
            else None,
            batches=aggregated.get("analytics_aggregator_batch_seconds_count")
            if aggregated
            else None,
            drops_by_reason=_by_label(gateway, "analytics_drop_total", "reason") if gateway else {},
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            lag = max(0.0, loop.time() - due)
            self.samples.append(await self.sample(loop_lag_s=lag))
            due += self.interval_s
            await asyncio.sleep(max(0.0, due - loop.time()))

    @staticmethod
    async def _scrape(url: str | None) -> dict[str, float] | None:
        if url is None:
            return None
        try:
            return await asyncio.to_thread(metric_totals, url)
        except OSError:  # a restarting or remote part: a gap in the plot, not a failed run
            return None
