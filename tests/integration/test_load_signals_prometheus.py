"""Load signals end to end: a real Prometheus scrapes a real gateway under synthetic SDK load,
and the operator's PromQL reads gateway CPU and combat load back for the heartbeat controller.

Needs the `prometheus` binary (Debian package `prometheus`; `.ci/run` installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gameplay_analytics.loadgen.harness import LoadProfile, run_load
from gameplay_analytics.local.services import free_port
from gameplay_analytics.operator import loadsignals
from gameplay_analytics.operator.manifests import Pipeline
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from gameplay_analytics.runtime.gateway import Gateway
from gameplay_analytics.sampling import heartbeat
from tests.integration.test_gateway_e2e import SECRET, running_gateway

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="no `prometheus` binary (Debian package prometheus; .ci/run installs it)",
    ),
]


@pytest.fixture
async def gateway(nats_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(nats_url, combat_window_s=5.0) as gw:
        yield gw


@pytest.fixture
def prometheus(tmp_path: Path, gateway: Gateway) -> Iterator[str]:
    """Prometheus scraping the gateway every second, labelled as the operator's queries expect
    (`namespace`, and `job` = the gateway's object name)."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: p-gateway\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gateway.metrics_port}']\n"
        "        labels: {namespace: games}\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


async def test_operator_reads_cpu_and_combat_load_from_a_real_prometheus(
    gateway: Gateway, prometheus: str, tmp_path: Path
) -> None:
    spec = AnalyticsPipelineSpec.model_validate(
        {"monitoring": {"prometheusUrl": prometheus, "queryTimeoutSeconds": 2}}
    )
    pipeline = Pipeline("p", "games", spec)
    profile = LoadProfile(players=12, seconds=9, ramp_s=1, disconnect_share=0, opt_out_share=0)
    load = asyncio.create_task(
        run_load(gateway.url, jwt_secret=SECRET, profile=profile, state_dir=tmp_path / "players")
    )
    figures: dict[str, float | None] = {}
    try:
        async with asyncio.timeout(45):
            while True:
                await asyncio.sleep(1)
                try:
                    signals, figures = await loadsignals.read_signals(pipeline)
                except loadsignals.PrometheusUnavailable:
                    continue  # still starting
                if signals.gateway_cpu is not None and (signals.combat_load or 0) > 0:
                    break
    finally:
        result = await load
    assert result.total("events_acked") > 0
    cpu, combat = signals.gateway_cpu, signals.combat_load
    assert cpu is not None and 0 < cpu < 2, figures  # cores used by the gateway process
    assert combat is not None and 0 < combat <= 1, figures  # share of sessions in combat
    assert figures["queueFill"] is not None and 0 <= figures["queueFill"] <= 1
    # The controller turns the real figures into a rate within its bounds, with a reason.
    config = heartbeat.HeartbeatConfig(min_rate=0.01, max_rate=1.0, cpu_target=0.65)
    state = heartbeat.step(heartbeat.HeartbeatState.start(0.1, config), signals, config=config)
    assert 0.01 <= state.rate <= 1.0 and state.reason
