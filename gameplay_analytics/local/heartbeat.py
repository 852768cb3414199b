"""The adaptive heartbeat on a laptop: `up` runs the operator's controller from its gateway's
own `/metrics` (no Prometheus; every worker's, with `up --gateway-workers N`), and publishes
a changed rate the way the operator does.

`signals_from_metrics` is pure: gateway CPU is the growth of `process_cpu_seconds_total`
(summed over the workers' texts) between two readings over the wall time and the machine's
cores; combat load is
`analytics_players_in_combat / analytics_sessions_active`. `LocalHeartbeat.step` is one
controller step (bounded HTTP read, a KV write only when the rate moved).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import urllib.request
from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families

from gameplay_analytics import sampling
from gameplay_analytics.contract.natsnames import KV_SAMPLING_KEY
from gameplay_analytics.operator import manifests, natsconfig, policy

__all__ = ["INTERVAL_S", "CpuReading", "LocalHeartbeat", "signals_from_metrics"]

log = logging.getLogger(__name__)

INTERVAL_S = 30.0
"""As the operator's default `loadSignalIntervalSeconds`."""
_READ_TIMEOUT_S = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class CpuReading:
    cpu_seconds: float
    at: float


def signals_from_metrics(
    text: str, *, now: float, previous: CpuReading | None, cores: float
) -> tuple[sampling.LoadSignals, CpuReading | None]:
    """The controller's inputs from one `/metrics` text, and the CPU reading to keep."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    cpu_total = values.get("process_cpu_seconds_total")
    reading = None if cpu_total is None else CpuReading(cpu_total, now)
    cpu = None
    if reading is not None and previous is not None and reading.at > previous.at:
        cpu = (reading.cpu_seconds - previous.cpu_seconds) / (reading.at - previous.at) / cores
    sessions = values.get("analytics_sessions_active", 0.0)
    combat = values.get("analytics_players_in_combat", 0.0) / sessions if sessions > 0 else None
    return sampling.LoadSignals(gateway_cpu=cpu, combat_load=combat, at=now), reading


class LocalHeartbeat:
    """The controller's state between steps, for one local gateway (one `/metrics` URL per
    worker process; a step reads them all, or skips when any is unavailable)."""

    def __init__(self, *, metrics_urls: Sequence[str], nats_url: str, bucket: str) -> None:
        self._metrics_urls = list(metrics_urls)
        self._nats_url = nats_url
        self._bucket = bucket
        rules = policy.default_rules()
        self._config = policy.heartbeat_config(rules, None)
        start = rules.classes[sampling.HEARTBEAT_CLASS].rate
        self.state = sampling.HeartbeatState.start(start, self._config) if self._config else None
        self._cpu: CpuReading | None = None
        self._cores = float(os.cpu_count() or 1)

    def step(self, now: float) -> bool:
        """Read the gateway, step the controller, publish a new rate. True when published."""
        if self._config is None or self.state is None:
            return False  # the heartbeat class is pinned: nothing to adapt
        try:
            text = "".join(_read(url) for url in self._metrics_urls)
        except OSError as err:
            log.info("heartbeat: gateway metrics unavailable (%s)", type(err).__name__)
            return False
        signals, self._cpu = signals_from_metrics(
            text, now=now, previous=self._cpu, cores=self._cores
        )
        new = sampling.step(self.state, signals, config=self._config)
        moved, self.state = new.rate != self.state.rate, new
        if not moved:
            return False
        values = manifests.config_values(policy.sampling_state(None, heartbeat_rate=new.rate), {})
        asyncio.run(
            natsconfig.publish_config(
                self._nats_url, {KV_SAMPLING_KEY: values[KV_SAMPLING_KEY]}, bucket=self._bucket
            )
        )
        log.info("heartbeat sampling now %g: %s", new.rate, new.reason)
        return True


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=_READ_TIMEOUT_S) as reply:
        text: str = reply.read().decode()
    return text if text.endswith("\n") else text + "\n"
