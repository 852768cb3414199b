"""Gateway throughput: events/s acked by one gateway process, next to raw JetStream publishing.

The gateway runs as its own process (`run_gateway`, configured through its environment), the
clients as their own processes (`bench/loadgen.py`, closed loop: one envelope in flight
each, the next sent on its ack), and the raw limit is pipelined `publish_async` of the same
envelope bytes from one nats-py connection to the same nats-server (fsync on every write, as
the local stack runs it), in the same run. Each row gives the CPU of the gateway, nats-server
and the load generator while the clients sent.
Run: `PYTHONPATH=. .venv/bin/python bench/gateway_bench.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nats

from bench.loadclient import Options, frame_doc
from bench.loadgen import run_loadgen
from gameplay_analytics.contract import messages
from gameplay_analytics.local.services import NatsServer, free_port
from gameplay_analytics.runtime import jetstream

SECRET = "bench-secret-bench-secret-bench-secret-bench"
DURATION_S = 4.0
RAW_DURATION_S = 3.0
CASES = [(50, 20), (50, 50), (500, 20), (500, 50)]
_GATEWAY = (
    "import asyncio\n"
    "from gameplay_analytics.runtime.gateway import GatewaySettings, run_gateway\n"
    "asyncio.run(run_gateway(GatewaySettings()))\n"
)


def _batch_bytes(events: int) -> bytes:
    batch = messages.EventBatch(  # the shape the gateway publishes (pseudonymous, format 2)
        session_id=str(uuid.uuid4()), player_ids={"2025-10": "a" * 64}, profile_key="b" * 64,
        client_guid=str(uuid.uuid4()), schema_version="1.0.0", received_at=1759320000123,
        events=[messages.PublishedEvent(seq=e["seq"], name=e["name"], ts=e["ts"], props=e["props"])
                for e in frame_doc(0, 0, events)["events"]],
        country="GB", geo_region="ENG", shard="eu-1", build="2025.10.1", platform="win64",
        latency_bucket="<50ms", envelope_id=1,
    )  # fmt: skip
    return messages.encode_batch(batch)


async def _raw_rate(nats_url: str, events: int) -> float:
    """Events/s of pipelined JetStream publishes of one envelope's bytes (4,000 in flight)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=4000)
    payload, prefix = _batch_bytes(events), uuid.uuid4().hex
    sent = 0
    start = time.monotonic()
    stop = start + RAW_DURATION_S
    while time.monotonic() < stop:
        for _ in range(200):
            await js.publish_async(
                messages.EVENTS_SUBJECT, payload, headers={"Nats-Msg-Id": f"{prefix}-{sent}"}
            )
            sent += 1
    await js.publish_async_completed()
    elapsed = time.monotonic() - start
    await nc.close()
    return sent * events / elapsed


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gateway exited during start")
        url = f"http://127.0.0.1:{port}/readyz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if reply.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("gateway not ready")


def _measure(nats_url: str, ws_url: str, watch: dict[str, int | None]) -> list[dict[str, Any]]:
    rows = []
    events_sizes = sorted({e for _, e in CASES})
    raw = {events: asyncio.run(_raw_rate(nats_url, events)) for events in events_sizes}
    for clients, events in CASES:
        res = run_loadgen(
            ws_url, clients, DURATION_S, secret=SECRET, watch=watch, tail_s=1.0,
            options=Options(events=events, closed_loop=True),
        )  # fmt: skip
        rate, refused = res["acked"] / DURATION_S, res["refused"]
        cores = ", ".join(f"{k} {v:.2f}" for k, v in res["cores"].items())
        rows.append({
            "component": "gateway",
            "metric": f"events_per_s_acked N={clients} E={events}"
                      + (f" ({refused} backpressure)" if refused else "") + f"; cores: {cores}",
            "value": round(rate), "raw": round(raw[events]),
            "ratio": round(rate / raw[events], 3), "target": ">=0.3",
            "cores": {k: round(v, 3) for k, v in res["cores"].items()},
            "loadgen_us_per_frame": res["loadgen_us_per_frame"],
        })  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        asyncio.run(jetstream.provision(jetstream.NatsSettings(nats_url=server.url)))
        ws_port, metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "GAMEPLAY_ANALYTICS_NATS_URL": server.url,
            "GAMEPLAY_ANALYTICS_JWT_SECRET": SECRET,
            "GAMEPLAY_ANALYTICS_WS_HOST": "127.0.0.1",
            "GAMEPLAY_ANALYTICS_WS_PORT": str(ws_port),
            "GAMEPLAY_ANALYTICS_METRICS_PORT": str(metrics_port),
            # Throughput, not protocol limits: clients here send as fast as they are acked.
            "GAMEPLAY_ANALYTICS_MAX_RATE_HZ": "100000",
            "GAMEPLAY_ANALYTICS_QUEUE_CAPACITY": "50000",
        }
        gateway = subprocess.Popen([sys.executable, "-c", _GATEWAY], env=env)
        try:
            _wait_ready(metrics_port, gateway)
            watch = {"gateway": gateway.pid, "nats": server.pid}
            return _measure(server.url, f"ws://127.0.0.1:{ws_port}/ws", watch)
        finally:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(20)
            except subprocess.TimeoutExpired:
                gateway.kill()
            server.stop()


if __name__ == "__main__":
    for row in run():
        print(row)
