"""`up`'s heartbeat controller against a real NATS: a gateway whose CPU is over the target
gets its heartbeat sampling halved, published in the config bucket as the operator would."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import nats
import pytest

from gameplay_analytics.contract.natsnames import KV_SAMPLING_KEY, PipelineNames
from gameplay_analytics.local.heartbeat import LocalHeartbeat
from gameplay_analytics.operator import manifests, policy

pytestmark = pytest.mark.integration


class _Metrics:
    cpu = 0.0  # what each gateway worker reports


def _serve_metrics() -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                f"process_cpu_seconds_total {_Metrics.cpu}\n"
                "analytics_sessions_active 10\nanalytics_players_in_combat 1\n"
            ).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def workers_metrics() -> Iterator[list[str]]:
    """The `/metrics` URLs of two gateway workers (`up --gateway-workers 2`)."""
    servers = [_serve_metrics() for _ in range(2)]
    try:
        yield [f"http://127.0.0.1:{s.server_address[1]}/metrics" for s in servers]
    finally:
        for server in servers:
            server.shutdown()


@pytest.fixture
def gateway_metrics(workers_metrics: list[str]) -> str:
    return workers_metrics[0]


async def test_a_busy_gateway_gets_less_heartbeat_sampling(
    nats_url: str, gateway_metrics: str
) -> None:
    bucket = PipelineNames().config_bucket
    beat = LocalHeartbeat(metrics_urls=[gateway_metrics], nats_url=nats_url, bucket=bucket)
    assert beat.state is not None
    start = beat.state.rate
    _Metrics.cpu = 100.0
    assert await asyncio.to_thread(beat.step, 1000.0) is False  # one reading: no CPU yet
    _Metrics.cpu = 100.0 + 30 * 0.95 * (beat._cores)  # 95 % of every core for 30 s
    assert await asyncio.to_thread(beat.step, 1030.0) is True
    assert beat.state.rate < start and "CPU" in beat.state.reason, beat.state
    expected = manifests.config_values(
        policy.sampling_state(None, heartbeat_rate=beat.state.rate), {}
    )[KV_SAMPLING_KEY]
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().key_value(bucket)
        entry = await kv.get(KV_SAMPLING_KEY)
    finally:
        await nc.close()
    assert entry.value is not None and entry.value.decode() == expected


async def test_the_cpu_of_every_gateway_worker_counts(
    nats_url: str, workers_metrics: list[str]
) -> None:
    """Two workers at 47.5 % of the machine each are a busy gateway; reading only the first
    (as `up` once did) saw half of it and never thinned the heartbeat."""
    bucket = PipelineNames().config_bucket
    beat = LocalHeartbeat(metrics_urls=workers_metrics, nats_url=nats_url, bucket=bucket)
    assert beat.state is not None
    start = beat.state.rate
    _Metrics.cpu = 100.0
    assert await asyncio.to_thread(beat.step, 1000.0) is False
    _Metrics.cpu = 100.0 + 30 * 0.475 * beat._cores
    assert await asyncio.to_thread(beat.step, 1030.0) is True
    assert beat.state.rate < start and "CPU" in beat.state.reason, beat.state
    single = LocalHeartbeat(metrics_urls=workers_metrics[:1], nats_url=nats_url, bucket=bucket)
    _Metrics.cpu = 100.0
    await asyncio.to_thread(single.step, 1000.0)
    _Metrics.cpu = 100.0 + 30 * 0.475 * single._cores
    assert await asyncio.to_thread(single.step, 1030.0) is False  # one worker alone is not busy
