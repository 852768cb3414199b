"""Open-loop overload: clients at 10 Hz as games send, offered load stepped past capacity.

Games do not wait for acks, so a closed-loop bench hides collapse. Here every client's game
tracks 20 events every 100 ms whatever happens, and the client sends them as the SDK does
(`bench/loadclient.py`): a 20-event envelope every 100 ms, but after a refusal with
`retry_after_ms` nothing for that long (jittered and doubled, `sdk.schedule.SendSchedule`),
then the refused envelope again, then what it buffered meanwhile in fuller envelopes (up to
500 events); nothing new with 8 envelopes unanswered. The load generator
(`bench/loadgen.py`, `bench/loadclient.py`: pre-encoded frames, one scheduler per process)
runs as its own processes; the gateway as its own process with the protocol's limits (10 Hz,
queue 5,000), nats-server with fsync on every write. Rates are per second of the common
sending window, and the CPU of the gateway, nats-server and the load generator over that
window is in every row (`cores`; the load generator's also per sent frame). Goodput counts
the events acked within the window; acks after it are `late`.

Steps: capacity is measured first (the goodput of 1,000 open-loop clients, 200k events/s
offered), then the offered load is 1x, 2x and 5x of it (events tracked per second; at most
5,000 clients, 1M events/s: the row gives the factor offered; the load generator sends only
what the holds let go, and its CPU is in the row). Every step's clients start WARMUP_S before
its window, which so measures the steady state; the 5x step is then run again from a standing
start (every client's first frame in the same 100 ms), reported beside it. Goodput (events
acked per second) at 5x must stay >= 0.9 x goodput at 1x, and the p95 from send to ack of
accepted envelopes stays bounded (admission by queueing delay, `runtime/gateway/admission.py`).
Then the issue's goal row: 1,000 clients at 10 Hz that ignore the retry hint (200k events/s
offered; every frame is read, and acked or refused), target 150k acked. In the same run the
same 1,000 clients send the same frames to a bare websockets server that only receives and
`orjson`-decodes them: the goal row's goodput over the bare server's decoded events/s. Then the
same steps against `gateway --workers 2` (one port, SO_REUSEPORT): on the 2-core machine the
workers share the cores with the load generator and nats-server, so this shows what a second
process adds there, not scaling.
Run: `PYTHONPATH=. .venv/bin/python bench/overload_bench.py` (minutes; noisy when loaded);
`LOADGEN_PROCS=N` spreads the clients over N processes (default 2); `--clients N
[--ignore-hint] [--workers W] [--times K] [--warmup S]` runs one step K times against one
gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.gateway_bench import SECRET, _wait_ready
from bench.loadclient import EVENTS, RATE_HZ, Options, analytics_frame
from bench.loadgen import run_loadgen
from gameplay_analytics.local.services import NatsServer, free_port, free_ports
from gameplay_analytics.runtime import jetstream

STEP_S = 8.0
WARMUP_S = 3.0  # every step's clients send this long before its window opens (steady state)
GOAL_CLIENTS = 1000  # the goal row: 1,000 clients at 10 Hz, 200k events/s offered
PROBE_CLIENTS = 1000  # 200k events/s offered: past one gateway's capacity on this machine
STEP_MAX_CLIENTS = 5000  # a step's clients at most (1M events/s offered); its row says so
WORKERS = (1, 2)  # gateway processes of each pass
_TAIL_S = 3.0
_GATEWAY = (
    "import asyncio\n"
    "from gameplay_analytics.runtime.gateway import GatewaySettings, run_gateway\n"
    "asyncio.run(run_gateway(GatewaySettings()))\n"
)
_BARE = """
import asyncio, collections, json, signal, sys, time, orjson
from websockets.asyncio.server import serve
count = collections.Counter()  # events decoded per 0.1 s of time.monotonic()
async def handle(ws):
    async for data in ws:
        doc = orjson.loads(data)
        count[int(time.monotonic() * 10)] += len(doc.get("events") or ())
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(handle, "127.0.0.1", int(sys.argv[1]), compression=None, max_size=None):
        print("ready", flush=True)
        await stop.wait()
    print(json.dumps(count), flush=True)
asyncio.run(main())
"""


def _bare_rate(clients: int) -> tuple[float, dict[str, Any]]:
    """Events/s the bare server decoded in the sending window, and what the clients did."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _BARE, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        res = run_loadgen(
            f"ws://127.0.0.1:{port}/ws", clients, STEP_S, secret=SECRET,
            options=Options(bare=True, holds=False),
            watch={"bare": proc.pid}, tail_s=_TAIL_S,
        )  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        start, stop = (round(t * 10) for t in res["window"])
        decoded = json.loads(out.strip().splitlines()[-1]).items()
        return sum(n for t, n in decoded if start <= int(t) < stop) / STEP_S, res
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
    data = [analytics_frame(i, i * EVENTS) for i in range(frames_n)]

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


def _steps(url: str, workers: int, watch: dict[str, int | None]) -> list[dict[str, Any]]:
    """Capacity, then 1x, 2x and 5x of it, then the goal row (GOAL_CLIENTS ignoring the hint)."""
    label = "" if workers == 1 else f"{workers} workers "
    # Capacity: the goodput of PROBE_CLIENTS open-loop clients (holding as the SDK does),
    # which saturates this gateway on the 2-core machine; the steps are multiples of it.
    probe = _load(url, PROBE_CLIENTS, holds=True, watch=watch)
    capacity = probe["acked"] / STEP_S
    rows: list[dict[str, Any]] = [{
        "component": "overload",
        "metric": f"{label}capacity: {PROBE_CLIENTS} clients {_describe(probe)}",
        "value": round(capacity), **_figures(probe),
    }]  # fmt: skip
    one_x = 0.0
    for factor in (1, 2, 5, None):
        holds = factor is not None
        clients = (
            max(1, min(STEP_MAX_CLIENTS, round(factor * capacity / (RATE_HZ * EVENTS))))
            if factor is not None
            else GOAL_CLIENTS
        )
        res = _load(url, clients, holds=holds, watch=watch)
        goodput = res["acked"] / STEP_S
        one_x = one_x or goodput
        name = (
            f"{factor}x: {clients} clients ({clients * RATE_HZ * EVENTS / capacity:.1f}x)"
            if factor is not None
            else f"goal: {clients} clients at {RATE_HZ} Hz ignoring retry_after_ms"
        )
        rows.append({
            "component": "overload",
            "metric": f"{label}{name} {_describe(res)}",
            "value": round(goodput), "raw": round(one_x),
            "ratio": round(goodput / one_x, 3) if one_x else None,
            "target": ">=0.9" if factor == 5 else ("150k" if factor is None else ""),
            **_figures(res),
        })  # fmt: skip
        if factor == 5:  # the same clients from a standing start: the first burst measured
            cold = _load(url, clients, holds=True, watch=watch, warmup_s=0.0)
            rows.append({
                "component": "overload",
                "metric": f"{label}{name}, window from a standing start (no warm-up: every "
                f"client's first frame in the same 100 ms) {_describe(cold)}",
                "value": round(cold["acked"] / STEP_S), "raw": round(one_x),
                "ratio": round(cold["acked"] / STEP_S / one_x, 3) if one_x else None,
                "target": "", **_figures(cold),
            })  # fmt: skip
    return rows


def _load(
    url: str, clients: int, *, holds: bool, watch: dict[str, int | None],
    warmup_s: float = WARMUP_S,
) -> dict[str, Any]:  # fmt: skip
    options = Options(holds=holds)
    return run_loadgen(
        url, clients, STEP_S, secret=SECRET, options=options, watch=watch, tail_s=_TAIL_S,
        warmup_s=warmup_s,
    )  # fmt: skip


def _describe(res: dict[str, Any]) -> str:
    cores = ", ".join(f"{k} {v:.2f}" for k, v in res["cores"].items())
    return (
        f"offered {res['offered'] / STEP_S:.0f}/s, sent {res['sent'] / STEP_S:.0f}/s in "
        f"{res['frames'] / STEP_S:.0f} frames/s (held {res['held'] / STEP_S:.0f}/s, resent "
        f"{res['resent'] / STEP_S:.0f}/s, stalled {res['stalled'] / STEP_S:.0f}/s, blocked "
        f"{res['blocked'] / STEP_S:.0f}/s, unsent at "
        f"the end {res['unsent']}) late {res['late']} refused {res['refused']} "
        f"p95 {res['p95_s'] or 0:.3f}s; cores: {cores}"
    )


def _figures(res: dict[str, Any]) -> dict[str, Any]:
    """The row's machine-readable extras: offered load, latency, CPU of each process."""
    per_frame = res["loadgen_us_per_frame"]
    return {
        "offered": round(res["offered"] / STEP_S), "sent": round(res["sent"] / STEP_S),
        "frames": round(res["frames"] / STEP_S), "held": round(res["held"] / STEP_S),
        "resent": round(res["resent"] / STEP_S), "unsent": res["unsent"],
        "blocked": round(res["blocked"] / STEP_S), "stalled": round(res["stalled"] / STEP_S),
        "late": res["late"],
        "refused": res["refused"], "reasons": res["reasons"], "failed": res["failed"],
        "closed": res["closed"],
        "p50_s": res["p50_s"],
        "p95_s": res["p95_s"], "cores": {k: round(v, 3) for k, v in res["cores"].items()},
        "loadgen_us_per_frame": round(per_frame, 1) if per_frame else None,
        "loadgen_process_cpu_s": round(res["process_cpu_s"], 2),  # connecting included
    }  # fmt: skip


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
                    steps = _steps(url, workers, {"gateway": gateway.pid, "nats": server.pid})
                finally:
                    _stop(gateway)
                rows.extend(steps)
                if workers == 1:
                    bare, res = _bare_rate(GOAL_CLIENTS)
                    goal = steps[-1]["value"]
                    rows.append({
                        "component": "overload",
                        "metric": f"goal row vs bare ws+orjson, {GOAL_CLIENTS} clients: "
                        f"bare {_describe(res)}",
                        "value": goal, "raw": round(bare),
                        "ratio": round(goal / bare, 3) if bare else None, "target": ">=0.3",
                        **_figures(res),
                    })  # fmt: skip
        finally:
            server.stop()
    rows.append(admission)
    return rows


def repeat(
    clients: int, *, holds: bool, workers: int, times: int, warmup_s: float = WARMUP_S
) -> list[dict[str, Any]]:
    """One step, `times` times against one gateway: to watch a state, or reproduce one (e.g.
    under `taskset -c 0`, a gateway starved of CPU; bench/README.md)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            asyncio.run(jetstream.provision(jetstream.NatsSettings(nats_url=server.url)))
            gateway, url = _start_gateway(server.url, workers)
            try:
                for _ in range(times):
                    watch = {"gateway": gateway.pid, "nats": server.pid}
                    res = _load(url, clients, holds=holds, watch=watch, warmup_s=warmup_s)
                    rows.append({
                        "component": "overload",
                        "metric": f"{clients} clients (holds={holds}) {_describe(res)}",
                        "value": round(res["acked"] / STEP_S), **_figures(res),
                    })  # fmt: skip
                    print(rows[-1], flush=True)
            finally:
                _stop(gateway)
        finally:
            server.stop()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, help="only this step, repeated (see --times)")
    parser.add_argument("--ignore-hint", action="store_true", help="clients ignore retry_after")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--times", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds before the window")
    args = parser.parse_args()
    if args.clients:
        repeat(
            args.clients, holds=not args.ignore_hint, workers=args.workers, times=args.times,
            warmup_s=args.warmup,
        )  # fmt: skip
    else:
        for row in run():
            print(row)
