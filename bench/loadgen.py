"""The load generator as its own processes, and the CPU everyone used while it sent.

`run_loadgen` spreads the clients (`bench.loadclient`) over `procs` processes (LOADGEN_PROCS,
or the environment's `LOADGEN_PROCS`). Each connects its clients, says `ready`, then all start
sending at the same instant the parent gives them, for `duration_s`, wait `tail_s` for late
replies and report. Rates are per second of that common sending window (connecting is outside
it), and the parent samples the CPU (user + system, with children: `gateway --workers N`) of
the processes it watches and of the load generator processes themselves over exactly it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from bench.loadclient import COUNTS, Options, Stats, connect_clients, run_clients

__all__ = ["LOADGEN_PROCS", "cpu_seconds", "run_loadgen"]

LOADGEN_PROCS = int(os.environ.get("LOADGEN_PROCS", "2"))
_SECRET_ENV = "BENCH_LOADGEN_SECRET"
_LEAD_S = 0.3  # from "go" to the first send: every process has read its start time


def run_loadgen(
    url: str,
    clients: int,
    duration_s: float,
    *,
    secret: str,
    options: Options,
    watch: Mapping[str, int | None],
    tail_s: float = 3.0,
    warmup_s: float = 0.0,
    procs: int = LOADGEN_PROCS,
) -> dict[str, Any]:
    """What the clients did in the window (counts summed, latency quantiles of all), and
    `cores`: CPU seconds per second of the window of each watched process and of `loadgen`."""
    share = [clients // procs + (i < clients % procs) for i in range(procs)]
    env = {**os.environ, "PYTHONPATH": _root(), _SECRET_ENV: secret}
    argv = [sys.executable, "-m", "bench.loadgen", url, str(duration_s), str(tail_s), str(warmup_s)]
    argv.append(json.dumps(asdict(options)))
    children = [
        subprocess.Popen(
            [*argv, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=_root(),
        )
        for n in share
        if n
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a load generator process failed to start")
        start = time.monotonic() + _LEAD_S + warmup_s  # CLOCK_MONOTONIC: one for them all
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"{start!r}\n")
            child.stdin.flush()
        pids = {**watch, **{f"loadgen{i}": c.pid for i, c in enumerate(children)}}
        time.sleep(max(0.0, start - time.monotonic()))
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(max(0.0, start + duration_s - time.monotonic()))
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        reports = [
            json.loads(c.communicate(timeout=tail_s + 60)[0].strip().splitlines()[-1])
            for c in children
        ]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return {**_summary(reports, used, duration_s), "window": (start, start + duration_s)}


def _summary(
    reports: list[dict[str, Any]], used: dict[str, float], duration_s: float
) -> dict[str, Any]:
    total: dict[str, Any] = {k: sum(r[k] for r in reports) for k in COUNTS}
    total["reasons"] = dict(
        sum((collections.Counter(r["reasons"]) for r in reports), start=collections.Counter())
    )
    latencies = sorted(x for r in reports for x in r["latencies"])
    for q in (50, 95, 99):
        at = latencies[int(q / 100 * (len(latencies) - 1))] / 1e6 if latencies else None
        total[f"p{q}_s"] = at
    loadgen = sum(v for k, v in used.items() if k.startswith("loadgen"))
    cores = {k: v / duration_s for k, v in used.items() if not k.startswith("loadgen")}
    total["cores"] = {**cores, "loadgen": loadgen / duration_s}
    total["loadgen_us_per_frame"] = loadgen / total["frames"] * 1e6 if total["frames"] else None
    return total


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process and its children used so far (0 if gone)."""
    total = 0.0
    if pid is None:
        return total
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


def _root() -> str:
    return str(Path(__file__).resolve().parents[1])


async def _child(
    url: str, duration_s: float, tail_s: float, warmup_s: float, options: Options, n: int
) -> Stats:
    stats = Stats()
    secret = os.environ[_SECRET_ENV]
    clients = await connect_clients(url, n, secret=secret, options=options, stats=stats)
    print("ready", flush=True)
    start = float(await asyncio.to_thread(sys.stdin.readline))
    await run_clients(clients, start, duration_s, tail_s=tail_s, warmup_s=warmup_s)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.process_cpu_s = usage.ru_utime + usage.ru_stime
    return stats


if __name__ == "__main__":
    url, duration, tail, warmup, options, n = sys.argv[1:7]
    stats = asyncio.run(
        _child(
            url,
            float(duration),
            float(tail),
            float(warmup),
            Options(**json.loads(options)),
            int(n),
        )
    )
    print(json.dumps(asdict(stats)), flush=True)
