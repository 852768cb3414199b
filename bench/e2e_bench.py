"""End to end: SDK → gateway → JetStream → aggregator → Postgres at a steady offered load.

Latency is `stored_at − event_ts` (commit stamp minus the client's track() time) for every
event of a step, warm-up left out. Steps: a light load (1,000 events/s: the floor, the "raw"
of the latency rows), then 50,000 events/s (issue 17's target: p95 < 250 ms), then down
towards the highest rate the machine sustains (stored ≥ 95 % of offered over the step, and
offered ≥ 90 % of asked). The SDK flushes at its 10 Hz: 250 players at 200 events/s each send
20-event envelopes. Everything shares the machine: load generator, gateway, aggregator,
nats-server and Postgres; `GATEWAY_WORKERS` runs the gateway as `gateway --workers N`.

Run: `.venv/bin/python bench/e2e_bench.py` (about 2 minutes; starts its own local stack).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from gameplay_analytics.loadgen import LoadProfile, LoadReport, Target, run_load_test
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.stack import LocalStack, StackConfig

TARGET_RATE = 50_000.0  # events/s offered (issue 17)
TARGET_P95_MS = 250.0
FLOOR_RATE = 1_000.0
PLAYERS = 250  # 10 Hz envelopes: 50,000 events/s is 20 events per envelope
GATEWAY_WORKERS = 1
STEP_S = 12.0
WARMUP_S = 3.0  # ramp-up (1 s) and first envelopes, left out of rates and latency
SUSTAINED_STORED = 0.95
SUSTAINED_OFFERED = 0.9
MAX_STEPS_DOWN = 2
SECRET = "e2e-bench-secret-at-least-32-bytes-long"
MACHINE = "machine (every process)"


def _profile(rate: float, seed: int) -> LoadProfile:
    return LoadProfile(
        players=PLAYERS, seconds=STEP_S, ramp_s=1.0, steady_rate=rate / PLAYERS,
        disconnect_share=0.0, opt_out_share=0.0, no_social_share=0.0, seed=seed,
        flush_timeout_s=10.0,
    )  # fmt: skip


def _window(report: LoadReport) -> dict[str, float]:
    """Offered and stored rates, gateway CPU, between warm-up and the end of play."""
    start = report.result.started
    inside = [s for s in report.samples if start + WARMUP_S <= s.at <= start + 1.0 + STEP_S]
    if len(inside) < 2:
        inside = report.samples
    a, b = inside[0], inside[-1]
    dt = max(1e-9, b.at - a.at)
    return {
        "offered": (b.offered - a.offered) / dt,
        "stored": ((b.persisted or 0) - (a.persisted or 0)) / dt,
        "gateway_cores": ((b.gateway_cpu_s or 0) - (a.gateway_cpu_s or 0)) / dt,
        "loadgen_cores": (b.loadgen_cpu_s - a.loadgen_cpu_s) / dt,
        "queue_max": max((s.queue_depth or 0) for s in inside),
    }


def _cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU seconds so far of each part of the stack, children included (Postgres backends)."""
    parts = {"gateway": stack.gateway, "nats": stack.nats, "postgres": stack.postgres}
    parts.update({f"aggregator-{i}": a for i, a in enumerate(stack.aggregators)})
    out: dict[str, float] = {}
    for name, part in parts.items():
        total = 0.0
        if part is not None and part.pid is not None:
            proc = psutil.Process(part.pid)
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    times = p.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    continue
        out[name] = total
    busy = psutil.cpu_times()
    out[MACHINE] = sum(busy) - busy.idle - getattr(busy, "iowait", 0.0)
    return out


async def _cores_in_window(stack: LocalStack) -> dict[str, float]:
    """Cores each part used between warm-up and the end of play."""
    await asyncio.sleep(WARMUP_S)
    before, t0 = _cpu_seconds(stack), time.monotonic()
    await asyncio.sleep(1.0 + STEP_S - WARMUP_S)
    after, dt = _cpu_seconds(stack), time.monotonic() - t0
    return {k: round((after[k] - before[k]) / dt, 2) for k in after}


async def _step(
    stack: LocalStack, target: Target, root: Path, rate: float, seed: int
) -> dict[str, Any]:
    load = psutil.getloadavg()[0]  # the machine may be shared: say how busy it was
    cores = asyncio.create_task(_cores_in_window(stack))
    report = await run_load_test(
        target, _profile(rate, seed), state_dir=root / f"players-{seed}", warmup_s=WARMUP_S,
        drain_timeout_s=60.0,
    )  # fmt: skip
    window = _window(report)
    lat, rec = report.latency, report.reconciliation
    assert lat is not None and rec is not None
    step = {
        "asked": rate,
        "load": load,
        **window,
        "p50": lat.p50_ms, "p95": lat.p95_ms, "p99": lat.p99_ms,
        "missing": rec.missing, "doubled": rec.doubled, "column": lat.column,
        "cores": await cores,
        "drops": report.drops_by_reason(),
        "backpressure": report.result.total("backpressure"),
        "stages": {x.stage: (x.p50_ms, x.p95_ms) for x in report.stages},
        "batch_ms": report.batch_ms(),
        "sustained": window["offered"] >= SUSTAINED_OFFERED * rate
        and window["stored"] >= SUSTAINED_STORED * window["offered"],
    }  # fmt: skip
    print(
        f"  asked {rate:>7,.0f}/s  offered {window['offered']:>7,.0f}/s  stored "
        f"{window['stored']:>7,.0f}/s  p50/p95/p99 {lat.p50_ms:,.0f}/{lat.p95_ms:,.0f}/"
        f"{lat.p99_ms:,.0f} ms  gateway {window['gateway_cores']:.2f} cores  "
        f"{'sustained' if step['sustained'] else 'NOT sustained'}; load average {load:.1f}\n"
        f"    cores: {step['cores']} loadgen {window['loadgen_cores']:.2f}; "
        f"gateway queue max {window['queue_max']:,.0f}; drops {step['drops']}; "
        f"backpressure refusals {step['backpressure']:,.0f}\n"
        f"    p50/p95 ms by stage: {step['stages']}; aggregator batch mean {step['batch_ms']} ms",
        file=sys.stderr,
        flush=True,
    )
    return step


async def _measure(root: Path) -> list[dict[str, Any]]:
    stack = LocalStack(
        StackConfig(data_dir=root / "stack", jwt_secret=SECRET, gateway_workers=GATEWAY_WORKERS)
    )
    await asyncio.to_thread(stack.start)
    try:
        assert stack.gateway is not None
        target = Target(
            stack.ws_url, SECRET, stack.postgres.dsn, stack.gateway.metrics_url,
            tuple(a.metrics_url for a in stack.aggregators), stack.nats_url_as(natsauth.ADMIN),
        )  # fmt: skip
        steps = [await _step(stack, target, root, FLOOR_RATE, seed=1)]
        steps.append(await _step(stack, target, root, TARGET_RATE, seed=2))
        if steps[-1]["sustained"]:
            # The pipeline is bistable near its limit (a full gateway queue → backpressure →
            # synchronised resends): a second attempt shows whether the target holds or tips.
            again = await _step(stack, target, root, TARGET_RATE, seed=22)
            if not again["sustained"] or again["p95"] > steps[-1]["p95"]:
                steps[-1] = again  # report the worse of the two
            steps[-1]["attempts"] = 2 - (not again["sustained"])
        best = steps[-1] if steps[-1]["sustained"] else None
        rate = TARGET_RATE
        for n in range(MAX_STEPS_DOWN):
            if best is not None:
                break
            # Just under what the last step actually stored: the pipeline's own ceiling.
            rate = max(FLOOR_RATE, 0.9 * min(rate, steps[-1]["stored"]))
            steps.append(await _step(stack, target, root, rate, seed=3 + n))
            if steps[-1]["sustained"]:
                best = steps[-1]
        if best is not None and best is not steps[1]:
            # One probe halfway back up towards the last rate that was not sustained.
            failed = min(s["asked"] for s in steps if not s["sustained"])
            steps.append(await _step(stack, target, root, (best["asked"] + failed) / 2, seed=9))
            if steps[-1]["sustained"]:
                best = steps[-1]
        return _rows(steps, best)
    finally:
        await asyncio.to_thread(stack.stop)


def _rows(steps: list[dict[str, Any]], best: dict[str, Any] | None) -> list[dict[str, Any]]:
    floor, at_target = steps[0], steps[1]
    asked = f"{TARGET_RATE:,.0f}/s asked"

    def row(metric: str, value: float, raw: float | None, target: float | str) -> dict[str, Any]:
        return {
            "component": "e2e",
            "metric": metric,
            "value": round(value, 2),
            "raw": None if raw is None else round(raw, 1),
            "ratio": round(value / raw, 3) if raw else None,
            "target": target,
        }

    rows = [
        row(f"offered events/s when {asked}", at_target["offered"], TARGET_RATE, 1.0),
        row(
            f"{TARGET_RATE:,.0f}/s attempts sustained (of 2; 0 if the first tipped)",
            at_target.get("attempts", 0),
            None,
            2,
        ),
        row(f"stored events/s when {asked}", at_target["stored"], at_target["offered"], 1.0),
        row(f"backpressure refusals (envelopes) at {asked}", at_target["backpressure"], None, 0),
    ]
    for p in ("p50", "p95", "p99"):
        target: float | str = TARGET_P95_MS if p == "p95" else ""
        rows.append(row(f"{p} track()→commit ms at {asked} (raw: 1k/s)",
                        at_target[p], floor[p], target))  # fmt: skip
    if best is not None and best is not at_target:
        rows.append(row("highest steady events/s sustained", best["offered"], TARGET_RATE, 1.0))
        for p in ("p50", "p95", "p99"):
            target = TARGET_P95_MS if p == "p95" else ""
            rows.append(row(f"{p} track()→commit ms at {best['offered']:,.0f}/s (raw: 1k/s)",
                            best[p], floor[p], target))  # fmt: skip
    elif best is None:
        rows.append({"component": "e2e", "metric": "highest steady events/s sustained",
                     "value": None, "raw": None, "ratio": None,
                     "target": f"none of {[round(s['asked']) for s in steps[1:]]}"})  # fmt: skip
    chosen = best or at_target
    for stage, (_, p95) in chosen["stages"].items():
        floor_p95 = floor["stages"].get(stage, (0.0, 0.0))[1]
        where = f"{chosen['offered']:,.0f}/s"
        rows.append(row(f"p95 ms of stage {stage} at {where} (raw: 1k/s)", p95, floor_p95, ""))
    rows.append(row("1-min load average before the 1k/s and target steps", at_target["load"],
                    floor["load"], ""))  # fmt: skip
    for step in [chosen] if chosen is at_target else [chosen, at_target]:
        rows.extend(_cpu_rows(step, row))
    rows.append(row("acked events missing or doubled (all steps)",
                    sum(s["missing"] + s["doubled"] for s in steps), None, 0))  # fmt: skip
    return rows


def _cpu_rows(step: dict[str, Any], row: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """Each part's cores in a step, the machine's (other work included), and what the stack
    would need for the target rate at this step's CPU per stored event."""
    where = f"{step['offered']:,.0f}/s offered"
    out = [row(f"{part} CPU cores at {where}", cores, None, "")
           for part, cores in step["cores"].items()]  # fmt: skip
    out.append(row(f"load generator CPU cores at {where}", step["loadgen_cores"], None, ""))
    stack = step["loadgen_cores"] + sum(c for p, c in step["cores"].items() if p != MACHINE)
    if step["stored"] > 0:
        needed = stack * TARGET_RATE / step["stored"]
        out.append(row(f"stack cores for {TARGET_RATE:,.0f}/s at the CPU/event of {where}",
                       needed, psutil.cpu_count(), ""))  # fmt: skip
    return out


def run() -> list[dict[str, Any]]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="e2e-bench-") as tmp:
        rows = asyncio.run(_measure(Path(tmp)))
    print(f"  e2e bench took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
