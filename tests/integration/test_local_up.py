"""`gameplay-analytics up` keeps PROTOCOL.md §4: a `ready <endpoints.json>` line once every
part accepts traffic, endpoints that work, and nothing left running after SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration


def test_up_prints_ready_serves_and_stops_everything(tmp_path: Path) -> None:
    env = {**os.environ, "GAMEPLAY_ANALYTICS_JWT_SECRET": "test-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameplay_analytics.cli", "up", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("ready "), (line, proc.stderr.read() if proc.stderr else "")
        endpoints = json.loads(Path(line.split(" ", 1)[1].strip()).read_text())
        assert set(endpoints) >= {
            "ws_url", "nats_url", "postgres_dsn", "warehouse_root", "metrics_urls",
        }  # fmt: skip
        assert endpoints["ws_url"].startswith("ws://127.0.0.1:")
        for url in endpoints["metrics_urls"].values():
            with urllib.request.urlopen(url.replace("/metrics", "/readyz"), timeout=5) as r:
                assert r.status == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4  # nats-server, postgres, gateway, aggregator
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    time.sleep(0.5)
    assert [c.pid for c in children if c.is_running() and c.status() != "zombie"] == []


def test_up_reports_which_part_failed_and_leaves_nothing(tmp_path: Path) -> None:
    # A gateway whose WebSocket port is taken cannot start: up must say so and clean up.
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {**os.environ, "GAMEPLAY_ANALYTICS_JWT_SECRET": "test-secret"}
        before = {p.pid for p in psutil.process_iter()}
        result = subprocess.run(
            [sys.executable, "-m", "gameplay_analytics.cli", "up", "--data-dir", str(tmp_path),
             "--ws-port", str(port)],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert result.returncode == 1
    assert "gateway did not become ready" in result.stderr
    time.sleep(0.5)
    # Only processes of this stack: their command lines name its data dir (other tests or
    # tools on the machine may start their own nats-server or postgres meanwhile).
    leftovers = [
        p.name() for p in psutil.process_iter(["name", "cmdline"])
        if p.pid not in before and p.info["name"] in ("nats-server", "postgres")
        and str(tmp_path) in " ".join(p.info["cmdline"] or ())
    ]  # fmt: skip
    assert leftovers == []


def test_up_restarts_a_part_that_dies_and_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "GAMEPLAY_ANALYTICS_JWT_SECRET": "test-secret"}
    status = [sys.executable, "-m", "gameplay_analytics.cli", "status", "--data-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameplay_analytics.cli", "up", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("ready "), (line, proc.stderr.read() if proc.stderr else "")
        path = Path(line.split(" ", 1)[1].strip())
        before = json.loads(path.read_text())
        assert before["processes"]["gateway"]["state"] == "running"
        assert subprocess.run(status, env=env, capture_output=True).returncode == 0
        old_pid = before["processes"]["gateway"]["pid"]
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        after: dict[str, object] = {}
        while time.monotonic() < deadline:
            gateway = json.loads(path.read_text())["processes"]["gateway"]
            if gateway["restarts"] == 1 and gateway["state"] == "running":
                after = gateway
                break
            time.sleep(0.2)
        assert after and after["pid"] != old_pid and after["last_exit_code"] == -9, after
        ready_url = before["metrics_urls"]["gateway"].replace("/metrics", "/readyz")
        while time.monotonic() < deadline:  # the restarted gateway serves again
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the restarted gateway never became ready")
        shown = subprocess.run(status, env=env, capture_output=True, text=True)
        assert shown.returncode == 0, shown.stdout
        assert "gateway: running" in shown.stdout and "restarts 1" in shown.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "up: gateway exited with code -9" in stderr and "up: gateway restarted" in stderr
    assert subprocess.run(status, env=env, capture_output=True).returncode == 1  # up is gone
