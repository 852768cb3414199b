"""Open-loop overload: clients at 10 Hz as games send, offered load stepped past capacity.

Games do not wait for acks, so a closed-loop bench hides collapse. Here every client sends a
20-event envelope every 100 ms whatever happens to the previous one, except that, as the SDK
does (`sdk.schedule.SendSchedule`), a client refused with `retry_after_ms` sends nothing for
that long (jittered): the envelopes due meanwhile are counted as held, not sent (the SDK would
buffer them and send them later, so goodput here is a floor); one more 5x step has clients
that ignore the hint (the worst case: every frame is read and refused). The load generator
runs as its own processes (their CPU is reported), the gateway as its own process with the
protocol's limits (10 Hz, queue 5,000), nats-server with fsync on every write.

Steps: capacity is measured first (the goodput of 400 open-loop clients, 80k events/s
offered), then the offered load is 1x, 2x and 5x of it (at most 1,000 clients); goodput
(events acked per second) at 5x must stay >= 0.9 x goodput at 1x, and the p95 from send to
ack of accepted envelopes stays bounded (admission by queueing delay,
`runtime/gateway/admission.py`). In the same run the same clients send the same frames to a
bare websockets server that only receives and `orjson`-decodes them: the gateway's goodput
over the bare server's decoded events/s. Then the same steps against `gateway --workers 2`
(one port, SO_REUSEPORT): on the 2-core machine the workers share the cores with the load
generator and nats-server, so this shows what a second process adds there, not scaling.
Run: `PYTHONPATH=. .venv/bin/python bench/overload_bench.py` (minutes; noisy when loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
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

from bench.gateway_bench import SECRET, _wait_ready
from gameplay_analytics.contract.errors import ErrorCode
from gameplay_analytics.local.services import NatsServer, free_port, free_ports
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.gateway.auth import issue_token
from gameplay_analytics.sdk.client import RATE_LIMITED_RETRY_MS
from gameplay_analytics.sdk.schedule import SendSchedule

RATE_HZ = 10
EVENTS = 20
STEP_S = 8.0
LOADGEN_PROCS = 2
MAX_CLIENTS = 1000
PROBE_CLIENTS = 400  # 80k events/s offered: past this machine's capacity (200 were not)
WORKERS = (1, 2)  # gateway processes of each pass
_TAIL_S = 3.0
_NO_RATE_LIMIT = 1_000_000  # SendSchedule.may_send: only the gateway's holds pace the client
_HELD_BY = {str(ErrorCode.BACKPRESSURE), str(ErrorCode.RATE_LIMITED)}
_GATEWAY = (
    "import asyncio\n"
    "from gameplay_analytics.runtime.gateway import GatewaySettings, run_gateway\n"
    "asyncio.run(run_gateway(GatewaySettings()))\n"
)
_BARE = """
import asyncio, signal, sys, orjson
from websockets.asyncio.server import serve
count = [0, 0]
async def handle(ws):
    async for data in ws:
        doc = orjson.loads(data)
        count[0] += 1
        count[1] += len(doc.get("events") or ())
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(handle, "127.0.0.1", int(sys.argv[1]), compression=None, max_size=None):
        print("ready", flush=True)
        await stop.wait()
    print(orjson.dumps({"frames": count[0], "events": count[1]}).decode(), flush=True)
asyncio.run(main())
"""


def _frame(ident: int, seq: int) -> bytes:
    events = [
        {"seq": seq + i, "name": "engage_enemy", "ts": 1759320000123,
         "props": {"enemy_id": f"orc_{(seq + i) % 97}", "tier": "boss"}}
        for i in range(EVENTS)
    ]  # fmt: skip
    return orjson.dumps({"type": "analytics", "id": ident, "schema": "1.0.0", "events": events})


async def _client(url: str, stop: float, holds: bool, bare: bool, stats: dict[str, Any]) -> None:
    player = str(uuid.uuid4())
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(orjson.dumps({
            "type": "hello", "token": issue_token(player, secret=SECRET),
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
        }).decode())  # fmt: skip
        if not bare:
            await ws.recv()
        sent_at: dict[int, float] = {}
        schedule = SendSchedule(1.0 / RATE_HZ, time.monotonic, seed=player)

        async def read() -> None:
            async for data in ws:
                reply = orjson.loads(data)
                at = sent_at.pop(reply.get("id"), None) if "id" in reply else None
                if reply.get("type") == "ack" and at is not None:
                    stats["acked"] += reply["accepted"]
                    stats["latencies"].append(time.monotonic() - at)
                elif reply.get("type") == "error":
                    stats["refused"] += 1
                    if reply.get("code") in _HELD_BY:  # as AnalyticsClient does
                        schedule.hold((reply.get("retry_after_ms") or RATE_LIMITED_RETRY_MS) / 1000)

        reader = asyncio.create_task(read())
        period = 1.0 / RATE_HZ
        next_at = time.monotonic() + period * (hash(player) % 1000) / 1000
        ident = seq = 0
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() >= stop:
                break
            next_at += period  # open loop: the schedule never waits for a reply
            if holds and not schedule.may_send(time.monotonic(), _NO_RATE_LIMIT):
                stats["held"] += EVENTS
                continue
            ident += 1
            frame = _frame(ident, seq)
            seq += EVENTS
            sent_at[ident] = time.monotonic()
            await ws.send(frame, text=True)
            stats["sent"] += EVENTS
        await asyncio.sleep(_TAIL_S)  # late acks of the envelopes sent in the step
        reader.cancel()


async def _loadgen(
    url: str, clients: int, duration_s: float, bare: bool, holds: bool
) -> dict[str, Any]:
    stats: dict[str, Any] = {"sent": 0, "held": 0, "acked": 0, "refused": 0, "latencies": []}
    start = time.monotonic()
    stop = start + duration_s
    await asyncio.gather(
        *(_client(url, stop, holds, bare, stats) for _ in range(clients)), return_exceptions=True
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    latencies = sorted(stats.pop("latencies"))
    stats["p95_s"] = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
    stats["cpu_s"] = usage.ru_utime + usage.ru_stime
    return stats


def _run_loadgen(
    url: str, clients: int, duration_s: float, *, bare: bool, holds: bool = True
) -> dict[str, Any]:
    """Clients spread over LOADGEN_PROCS processes; their results summed (p95: the worst)."""
    share = [clients // LOADGEN_PROCS + (i < clients % LOADGEN_PROCS) for i in range(LOADGEN_PROCS)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--loadgen",
                url,
                str(n),
                str(duration_s),
                str(int(bare)),
                str(int(holds)),
            ],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": _root()},
        )
        for n in share
        if n
    ]
    results = [json.loads(p.communicate(timeout=duration_s + 120)[0]) for p in procs]
    p95s = [r["p95_s"] for r in results if r["p95_s"] is not None]
    total = {k: sum(r[k] for r in results) for k in ("sent", "held", "acked", "refused", "cpu_s")}
    total["p95_s"] = max(p95s) if p95s else None
    return total


def _root() -> str:
    return str(Path(__file__).resolve().parents[1])


def _bare_rate(clients: int) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _BARE, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        started = time.monotonic()
        _run_loadgen(f"ws://127.0.0.1:{port}/ws", clients, STEP_S, bare=True, holds=False)
        elapsed = time.monotonic() - started - _TAIL_S  # the clients' closing wait
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        return float(json.loads(out.strip().splitlines()[-1])["events"]) / max(elapsed, STEP_S)
    finally:
        if proc.poll() is None:
            proc.kill()


def admission_cost(frames_n: int = 5000) -> dict[str, Any]:
    """CPU per frame of the refusal path (parse the frame header, rate check, encode the error)
    next to the accept path (the same, then validate, sample, package, encode the ack)."""
    from gameplay_analytics.contract import frames
    from gameplay_analytics.privacy.consent import Consent
    from gameplay_analytics.privacy.edge import EdgeKeys
    from gameplay_analytics.privacy.pseudonym import SaltBook
    from gameplay_analytics.runtime.config import default_config
    from gameplay_analytics.runtime.gateway.guard import SamplingGuard
    from gameplay_analytics.runtime.gateway.handshake import SessionContext
    from gameplay_analytics.runtime.gateway.intake import intake
    from gameplay_analytics.runtime.gateway.replies import TokenBucket

    live, player = default_config(), str(uuid.uuid4())
    ctx = SessionContext(
        session_id="s", player_uuid=player, client_guid=str(uuid.uuid4()), schema="1.0.0",
        consent=Consent(),
    )  # fmt: skip
    guard = SamplingGuard(player_uuid=player, consent=Consent(), rules=live.rules, multiplier=1)
    edge = EdgeKeys(salts=SaltBook(secret="bench"), profile_secret="bench").player(player, None)
    data = [_frame(i, i * EVENTS) for i in range(frames_n)]

    def refuse() -> None:
        bucket = TokenBucket(1e9, 0.0)
        for raw in data:
            frame = frames.parse_client_frame(raw)
            bucket.take(1.0)
            refusal = frames.Error(
                code="backpressure", detail="ingest queue full",
                id=getattr(frame, "id", None), retry_after_ms=1000,
            )  # fmt: skip
            frames.encode(refusal)

    def accept() -> None:
        bucket = TokenBucket(1e9, 0.0)
        for raw in data:
            frame = frames.parse_client_frame(raw)
            bucket.take(1.0)
            assert isinstance(frame, frames.AnalyticsFrame)
            result = intake(frame, ctx, guard, live, now=1.0, received_at=1, latency=None,
                            edge=edge)  # fmt: skip
            frames.encode(result.ack)

    costs = {}
    for name, path in (("refuse", refuse), ("accept", accept)) * 2:
        started = time.process_time()
        path()
        costs[name] = (time.process_time() - started) / frames_n  # the second, warm, run
    return {
        "component": "overload",
        "metric": f"admission: refusal vs accept CPU per {EVENTS}-event frame (us)",
        "value": round(costs["refuse"] * 1e6, 1), "raw": round(costs["accept"] * 1e6, 1),
        "ratio": round(costs["refuse"] / costs["accept"], 3), "target": "small",
    }  # fmt: skip


def _steps(
    url: str, workers: int, gateway: subprocess.Popen[bytes]
) -> tuple[list[dict[str, Any]], float]:
    """Capacity, then 1x, 2x and 5x of it: the rows, and the number of clients at 5x."""
    label = "" if workers == 1 else f"{workers} workers "
    # Capacity: the goodput of PROBE_CLIENTS open-loop clients, which saturates this
    # gateway on the 2-core machine; the steps are multiples of it.
    probe = _run_loadgen(url, PROBE_CLIENTS, STEP_S, bare=False)
    capacity = probe["acked"] / STEP_S
    per_client = RATE_HZ * EVENTS
    rows: list[dict[str, Any]] = [{
        "component": "overload",
        "metric": f"{label}capacity: {PROBE_CLIENTS} clients offered "
                  f"{probe['sent'] / STEP_S:.0f}/s p95 {probe['p95_s'] or 0:.3f}s "
                  f"loadgen {probe['cpu_s'] / STEP_S:.2f}",
        "value": round(capacity),
    }]  # fmt: skip
    goodput: dict[int, float] = {}
    clients = 1
    for factor, holds in ((1, True), (2, True), (5, True), (5, False)):
        clients = max(1, min(MAX_CLIENTS, round(factor * capacity / per_client)))
        cpu0 = _cpu(gateway.pid)
        res = _run_loadgen(url, clients, STEP_S, bare=False, holds=holds)
        gw_cpu = (_cpu(gateway.pid) - cpu0) / (STEP_S + _TAIL_S)
        if holds:
            goodput[factor] = res["acked"] / STEP_S
        deaf = "" if holds else " (clients ignore retry_after_ms)"
        rows.append({
            "component": "overload",
            "metric": f"{label}{factor}x{deaf}: {clients} clients "
                      f"offered {res['sent'] / STEP_S:.0f}/s (held {res['held'] / STEP_S:.0f}/s) "
                      f"refused {res['refused']} "
                      f"p95 {res['p95_s'] or 0:.3f}s "
                      f"gw {gw_cpu:.2f} cores, loadgen {res['cpu_s'] / STEP_S:.2f}",
            "value": round(res["acked"] / STEP_S),
            "raw": round(goodput[1]),
            "ratio": round(res["acked"] / STEP_S / goodput[1], 3) if goodput[1] else None,
            "target": ">=0.9" if factor == 5 else "",
            "p95_s": res["p95_s"],
        })  # fmt: skip
    return rows, clients


def _start_gateway(nats_url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """One gateway process (or `gateway --workers N`), ready; and its WebSocket URL."""
    ws_port, metrics_port = free_port(), free_ports(workers)
    env = {
        **os.environ,
        "GAMEPLAY_ANALYTICS_NATS_URL": nats_url,
        "GAMEPLAY_ANALYTICS_JWT_SECRET": SECRET,
        "GAMEPLAY_ANALYTICS_WS_HOST": "127.0.0.1",
        "GAMEPLAY_ANALYTICS_WS_PORT": str(ws_port),
        "GAMEPLAY_ANALYTICS_METRICS_PORT": str(metrics_port),
        "GAMEPLAY_ANALYTICS_BREAKER_HOLD_S": "3600",  # measure admission, not thinning
        "GAMEPLAY_ANALYTICS_LOG_LEVEL": "WARNING",  # not a line per connection
    }
    argv = (
        [sys.executable, "-c", _GATEWAY]
        if workers == 1
        else [sys.executable, "-m", "gameplay_analytics.cli", "gateway", "--workers", str(workers)]
    )
    gateway = subprocess.Popen(argv, env=env)
    try:
        for i in range(workers):
            _wait_ready(metrics_port + i, gateway)
    except BaseException:
        _stop(gateway)
        raise
    return gateway, f"ws://127.0.0.1:{ws_port}/ws"


def _stop(gateway: subprocess.Popen[bytes]) -> None:
    gateway.send_signal(signal.SIGTERM)
    try:
        gateway.wait(30)
    except subprocess.TimeoutExpired:
        gateway.kill()


def run() -> list[dict[str, Any]]:
    admission = admission_cost()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            asyncio.run(jetstream.provision(jetstream.NatsSettings(nats_url=server.url)))
            for workers in WORKERS:
                gateway, url = _start_gateway(server.url, workers)
                try:
                    steps, clients = _steps(url, workers, gateway)
                finally:
                    _stop(gateway)
                rows.extend(steps)
                if workers == 1:
                    bare = _bare_rate(clients)
                    at_5x = steps[-1]["value"]
                    rows.append({
                        "component": "overload",
                        "metric": f"gateway goodput at 5x vs bare ws+orjson, {clients} "
                        "clients ignoring retry_after_ms",
                        "value": at_5x, "raw": round(bare),
                        "ratio": round(at_5x / bare, 3) if bare else None, "target": ">=0.3",
                    })  # fmt: skip
        finally:
            server.stop()
    rows.append(admission)
    return rows


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its children (workers) used so far."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loadgen"]:
        url, n, duration, bare, holds = sys.argv[2:7]
        stats = asyncio.run(_loadgen(url, int(n), float(duration), bare == "1", holds == "1"))
        print(json.dumps(stats))
    else:
        for row in run():
            print(row)
