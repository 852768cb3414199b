"""`gateway --workers 2`: two processes share one WebSocket port (SO_REUSEPORT), each with its
own probes; both serve sessions; SIGTERM drains both and the supervisor exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import urllib.request
import uuid

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.local.services import free_port
from gameplay_analytics.runtime.gateway import GatewaySettings, issue_token
from gameplay_analytics.runtime.gateway.workers import worker_environments

SECRET = "workers-test-secret-workers-test-secret-workers"


def _two_free_ports() -> int:
    """A port p with p and p + 1 both free (the workers' probes)."""
    for _ in range(50):
        base = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for port in (base, base + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError("no two consecutive free ports")


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
    ws_port, metrics = free_port(), _two_free_ports()
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
        sockets = []
        for _ in range(16):
            ws = await connect(f"ws://127.0.0.1:{ws_port}/ws")
            player = str(uuid.uuid4())
            await ws.send(json.dumps({
                "type": "hello", "token": issue_token(player, secret=SECRET),
                "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
            }))  # fmt: skip
            assert json.loads(await ws.recv())["type"] == "welcome"
            event = {"seq": 1, "name": "session_start", "ts": 1_700_000_000_000, "props": {}}
            await ws.send(json.dumps({"type": "analytics", "id": 1, "schema": "1.0.0",
                                      "events": [event]}))  # fmt: skip
            assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 1}
            sockets.append(ws)
        active = [_active(_get(p + "/metrics")[1]) for p in probes]
        assert sum(active) == 16 and min(active) > 0, active  # both workers took sessions
        for ws in sockets:
            await ws.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
