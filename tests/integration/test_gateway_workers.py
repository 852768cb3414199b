"""`gateway --workers 2`: two processes share one WebSocket port (SO_REUSEPORT), each with its
own probes; both serve sessions; SIGTERM drains both and the supervisor exits 0. `up
--gateway-workers 2` runs the same in the local stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.local.services import free_port, free_ports
from gameplay_analytics.runtime.gateway import GatewaySettings, issue_token
from gameplay_analytics.runtime.gateway.workers import worker_environments

SECRET = "workers-test-secret-workers-test-secret-workers"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status, reply.read().decode()
    except OSError:
        return 0, ""


def _active(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("analytics_sessions_active "):
            return float(line.split()[1])
    return 0.0


def test_worker_environments_share_the_port_and_number_the_probes() -> None:
    settings = GatewaySettings(jwt_secret="s", ws_port=9000, metrics_port=9100)
    envs = worker_environments({"X": "1"}, settings, 3)
    assert [e["GAMEPLAY_ANALYTICS_METRICS_PORT"] for e in envs] == ["9100", "9101", "9102"]
    assert all(e["GAMEPLAY_ANALYTICS_REUSE_PORT"] == "true" and e["X"] == "1" for e in envs)
    with pytest.raises(ValueError, match="fixed"):
        worker_environments({}, GatewaySettings(jwt_secret="s", ws_port=0), 2)


async def test_two_workers_share_one_port(nats_url: str) -> None:
    ws_port, metrics = free_port(), free_ports(2)
    env = {
        **os.environ, "GAMEPLAY_ANALYTICS_NATS_URL": nats_url,
        "GAMEPLAY_ANALYTICS_JWT_SECRET": SECRET, "GAMEPLAY_ANALYTICS_WS_HOST": "127.0.0.1",
        "GAMEPLAY_ANALYTICS_WS_PORT": str(ws_port),
        "GAMEPLAY_ANALYTICS_METRICS_HOST": "127.0.0.1",
        "GAMEPLAY_ANALYTICS_METRICS_PORT": str(metrics),
    }  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameplay_analytics.cli", "gateway", "--workers", "2", env=env
    )
    probes = [f"http://127.0.0.1:{metrics + i}" for i in range(2)]
    try:
        for _ in range(300):
            if all(_get(p + "/readyz")[0] == 200 for p in probes):
                break
            assert proc.returncode is None, "the supervisor exited"
            await asyncio.sleep(0.1)
        else:
            pytest.fail("workers not ready")
        await _sessions_on_every_worker(
            f"ws://127.0.0.1:{ws_port}/ws", [p + "/metrics" for p in probes], SECRET
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


async def _sessions_on_every_worker(url: str, metrics_urls: list[str], secret: str) -> None:
    """16 sessions each get an envelope acked, and every worker serves some of them."""
    sockets = []
    for _ in range(16):
        ws = await connect(url)
        player = str(uuid.uuid4())
        await ws.send(json.dumps({
            "type": "hello", "token": issue_token(player, secret=secret),
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
        }))  # fmt: skip
        assert json.loads(await ws.recv())["type"] == "welcome"
        event = {"seq": 1, "name": "session_start", "ts": 1_700_000_000_000, "props": {}}
        await ws.send(json.dumps({"type": "analytics", "id": 1, "schema": "1.0.0",
                                  "events": [event]}))  # fmt: skip
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 1}
        sockets.append(ws)
    active = [_active(_get(url)[1]) for url in metrics_urls]
    assert sum(active) == 16 and min(active) > 0, active  # every worker took sessions
    for ws in sockets:
        await ws.close()


async def test_up_runs_gateway_workers(tmp_path: Path) -> None:
    env = {**os.environ, "GAMEPLAY_ANALYTICS_JWT_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameplay_analytics.cli", "up", "--data-dir", str(tmp_path),
        "--gateway-workers", "2", env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        assert line.startswith("ready "), line
        endpoints_file = Path(line.split(" ", 1)[1].strip())
        endpoints = json.loads(await asyncio.to_thread(endpoints_file.read_text))
        gateways = [endpoints["metrics_urls"][role] for role in ("gateway", "gateway-1")]
        await _sessions_on_every_worker(endpoints["ws_url"], gateways, SECRET)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0


def test_up_refuses_fewer_than_one_gateway_worker(tmp_path: Path) -> None:
    """`up --gateway-workers 0` ran one plain gateway and waited for none of its probes, so
    `ready` could come before the gateway was; it is a bad argument, refused before any start."""
    import subprocess

    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "up", "--gateway-workers", "0",
         "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1] == "up: --gateway-workers must be at least 1, not 0"
    )
    assert result.stdout == "" and not data.exists()
