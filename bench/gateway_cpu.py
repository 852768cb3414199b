"""The gateway's CPU per frame: accepted and refused, beside a bare websockets server.

Throughput on a shared 2-core machine swings with whatever else runs; the CPU time the
gateway process spends per frame moves less (still +-15 % between passes on a loaded machine:
three rounds, medians reported). A real gateway process (the overload
bench's, fsync always) behind a real nats-server takes open-loop clients at the protocol's
10 Hz (20-event envelopes, one load-generator process, all connected and welcomed before the
measure starts); the gateway's user + system CPU over the sending window and its tail,
divided by the frames it answered:

- accepted: a gateway without rate, room or delay limits in the way, so every frame is
  validated, sampled, group-committed to JetStream and acked;
- refused: the same clients against a gateway allowing 1 frame/s per connection, so about
  nine frames in ten are refused `rate_limited` (parsed header, token bucket, error reply);
  the cost of the accepted tenth (the first pass' figure) is taken out;
- bare: a websockets server that only receives and `orjson`-decodes the same frames.

Run: `PYTHONPATH=. .venv/bin/python bench/gateway_cpu.py [clients] [seconds]`; or
`bench/run.py gateway_cpu`. Profile the gateway meanwhile with
`.venv/bin/py-spy record -r 200 -f speedscope --pid <pid>` (the pid is printed).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psutil
from websockets.asyncio.client import connect

from bench.gateway_bench import SECRET
from bench.loadclient import EVENTS, RATE_HZ, analytics_frame
from bench.loadgen import cpu_seconds as _cpu
from bench.overload_bench import _BARE, _start_gateway, _stop
from gameplay_analytics.local.services import NatsServer, free_port
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.gateway.auth import issue_token

CLIENTS = 500  # 100k events/s offered: within one gateway's capacity on the 2-core machine
# (the cost per frame falls as the rate rises: more frames per event-loop pass and per
# JetStream write; 200 clients cost ~45 % more per frame than 500)
SECONDS = 10.0
ROUNDS = 3
_TAIL_S = 1.5
# Nothing refused in the accept pass, however busy the machine: no rate, room or delay limit
# in the way (a starved load generator sends in bursts).
ACCEPT_ALL = {
    "GAMEPLAY_ANALYTICS_MAX_RATE_HZ": "1000",
    "GAMEPLAY_ANALYTICS_QUEUE_CAPACITY": "100000000",
    "GAMEPLAY_ANALYTICS_QUEUE_DELAY_TARGET_S": "0",
}


async def _client(
    url: str, bare: bool, ready: asyncio.Event, go: asyncio.Event, stats: dict[str, Any]
) -> None:
    player = str(uuid.uuid4())
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(orjson.dumps({
            "type": "hello", "token": issue_token(player, secret=SECRET),
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
        }).decode())  # fmt: skip
        if not bare:
            await ws.recv()
        stats["connected"] += 1
        if stats["connected"] == stats["clients"]:
            ready.set()
        await go.wait()

        async def read() -> None:
            async for data in ws:
                reply = orjson.loads(data)
                kind = reply.get("type")
                if kind == "ack":
                    stats["acked"] += 1
                elif kind == "error":
                    stats["refused"] += 1

        reader = asyncio.create_task(read())
        period = 1.0 / RATE_HZ
        next_at = time.monotonic() + period * (hash(player) % 1000) / 1000
        stop = stats["stop"]
        ident = seq = 0
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() >= stop:
                break
            next_at += period
            ident += 1
            await ws.send(analytics_frame(ident, seq), text=True)
            seq += EVENTS
            stats["sent"] += 1
        await asyncio.sleep(_TAIL_S)
        reader.cancel()


async def _drive(url: str, clients: int, seconds: float, bare: bool) -> dict[str, Any]:
    """Connect every client, say `ready` on stdout, wait for a line on stdin, then send."""
    stats: dict[str, Any] = {"clients": clients, "connected": 0, "sent": 0, "acked": 0,
                             "refused": 0, "stop": 0.0}  # fmt: skip
    ready, go = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(_client(url, bare, ready, go, stats)) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    stats["stop"] = time.monotonic() + seconds
    go.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats["cpu_s"] = (usage.ru_utime + usage.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return stats


def _measure(url: str, pid: int, clients: int, seconds: float, bare: bool) -> dict[str, Any]:
    """Drive one pass from a separate process; the server's CPU seconds over it added."""
    driver = subprocess.Popen(
        [sys.executable, __file__, "--drive", url, str(clients), str(seconds), str(int(bare))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    assert driver.stdin is not None and driver.stdout is not None
    try:
        if driver.stdout.readline().strip() != "ready":
            raise RuntimeError("load generator did not connect")
        time.sleep(0.5)  # the welcomes' aftermath settles
        cpu0, sys0 = _cpu(pid), _system(pid)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        out = driver.stdout.read()
        driver.wait(30)
        stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        stats["server_cpu_s"] = _cpu(pid) - cpu0
        stats["server_system_s"] = _system(pid) - sys0
        return stats
    finally:
        if driver.poll() is None:
            driver.kill()


def _system(pid: int) -> float:
    """The kernel's share of a process' CPU seconds so far (syscalls: socket reads, writes)."""
    try:
        return float(psutil.Process(pid).cpu_times().system)
    except psutil.Error:
        return 0.0


def _bare(clients: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _BARE, str(port)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        return _measure(f"ws://127.0.0.1:{port}/ws", proc.pid, clients, seconds, bare=True)
    finally:
        _stop(proc)


def _gateway(nats_url: str, clients: int, seconds: float, **env: str) -> dict[str, Any]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        gateway, url = _start_gateway(nats_url, 1)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    print(f"gateway pid {gateway.pid}", file=sys.stderr, flush=True)
    try:
        return _measure(url, gateway.pid, clients, seconds, bare=False)
    finally:
        _stop(gateway)


def _per_frame(passes: dict[str, dict[str, Any]]) -> dict[str, float]:
    """CPU seconds per accepted, refused and bare frame, and the kernel's part of accepted."""
    accept, refuse, bare = passes["accept"], passes["refuse"], passes["bare"]
    answered = max(1, accept["acked"] + accept["refused"])
    per_accept = accept["server_cpu_s"] / answered
    refused_cpu = refuse["server_cpu_s"] - per_accept * refuse["acked"]
    return {
        "accept": per_accept,
        "accept_system": accept["server_system_s"] / answered,
        "refuse": refused_cpu / max(1, refuse["refused"]),
        "bare": bare["server_cpu_s"] / max(1, bare["sent"]),
    }


def measure(
    clients: int = CLIENTS, seconds: float = SECONDS, rounds: int = ROUNDS
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """`rounds` rounds of the three passes; the median of each figure (a shared machine's
    neighbours come and go), and the last round's raw counts."""
    figures: list[dict[str, float]] = []
    passes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            asyncio.run(jetstream.provision(jetstream.NatsSettings(nats_url=server.url)))
            for _ in range(rounds):
                passes = {
                    "accept": _gateway(server.url, clients, seconds, **ACCEPT_ALL),
                    "refuse": _gateway(
                        server.url, clients, seconds, GAMEPLAY_ANALYTICS_MAX_RATE_HZ="1"
                    ),
                    "bare": _bare(clients, seconds),
                }
                figures.append(_per_frame(passes))
        finally:
            server.stop()
    return {k: statistics.median(f[k] for f in figures) for k in figures[0]}, passes


def run(clients: int = CLIENTS, seconds: float = SECONDS) -> list[dict[str, Any]]:
    cost, passes = measure(clients, seconds)
    accept, refuse = passes["accept"], passes["refuse"]
    load = os.getloadavg()[0]
    label = f"{clients} clients x {RATE_HZ} Hz x {EVENTS} events, load {load:.1f}"
    us = {k: round(v * 1e6, 1) for k, v in cost.items()}
    return [
        {
            "component": "gateway",
            "metric": f"CPU us per accepted frame vs bare ws+orjson ({label}; "
            f"kernel {us['accept_system']}; acked {accept['acked']}/{accept['sent']}, "
            f"loadgen {accept['cpu_s']:.1f}s)",
            "value": us["accept"], "raw": us["bare"],
            "ratio": round(cost["bare"] / cost["accept"], 3) if cost["accept"] else None,
            "target": "<=120us",
        },
        {
            "component": "gateway",
            "metric": f"CPU us per refused frame vs accepted (rate_limited, "
            f"refused {refuse['refused']}/{refuse['sent']})",
            "value": us["refuse"], "raw": us["accept"],
            "ratio": round(cost["refuse"] / cost["accept"], 3) if cost["accept"] else None,
            "target": "small",
        },
    ]  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:
        url, n, secs, bare = sys.argv[2:6]
        result = asyncio.run(_drive(url, int(n), float(secs), bare == "1"))
        print(json.dumps(result))
    else:
        args = sys.argv[1:]
        clients = int(args[0]) if args else CLIENTS
        for row in run(clients, float(args[1]) if len(args) > 1 else SECONDS):
            print(row)
