"""A load test against any gateway: play, watch, drain, reconcile, report.

Stack-agnostic: it needs a WebSocket URL and the JWT secret, and for the stored side a
Postgres DSN; metrics URLs are optional (without them the report has no CPU or queue figures).
`gameplay-analytics load` starts a local stack and hands its endpoints here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import asyncpg
import nats

from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.loadgen import stages, store
from gameplay_analytics.loadgen.harness import LoadProfile, LoadResult, run_load
from gameplay_analytics.loadgen.observe import MetricsWatch
from gameplay_analytics.loadgen.report import LoadReport, plot, write_table

__all__ = ["Target", "run_load_test"]

_PROGRESS_EVERY_S = 10
DRAIN_TIMEOUT_S = 120.0
"""Longest wait, after the players stop, for the aggregator to store what was acked."""


@dataclass(frozen=True)
class Target:
    """Where the pipeline under test listens."""

    ws_url: str
    jwt_secret: str
    postgres_dsn: str | None = None
    gateway_metrics_url: str | None = None
    aggregator_metrics_urls: Sequence[str] = ()
    nats_url: str | None = None  # with it, the report splits the latency by stage (stages.py)
    stream: str = PipelineNames().stream


async def run_load_test(
    target: Target,
    profile: LoadProfile,
    *,
    state_dir: Path,
    out: TextIO | None = None,
    plot_path: Path | None = None,
    warmup_s: float = 0.0,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadReport:
    """Run `profile` against `target` and reconcile. Latency percentiles leave out events
    tracked in the first `warmup_s` seconds (connection ramp-up)."""
    watches: list[MetricsWatch] = []
    started = time.time()
    if progress is None and out is not None:
        progress = _progress_lines(out)
    try:
        result = await run_load(
            target.ws_url,
            jwt_secret=target.jwt_secret,
            profile=profile,
            state_dir=state_dir,
            progress=progress,
            on_start=lambda live: watches.append(_start_watch(target, live)),
        )
    except BaseException:
        for watch in watches:
            await watch.stop()
        raise
    (watch,) = watches
    drain_started = time.monotonic()
    exact, partial = result.promised()
    guids = result.client_guids()
    latency = reconciliation = None
    stamped: list[stages.StampedRow] = []
    if target.postgres_dsn is not None:
        await store.wait_stored(
            target.postgres_dsn,
            guids,
            expected=len(exact) + sum(count for _, _, count in partial),
            timeout_s=drain_timeout_s,
        )
    drain_s = time.monotonic() - drain_started
    await watch.stop()
    if target.postgres_dsn is not None:
        conn = await asyncpg.connect(target.postgres_dsn)
        try:
            latency = await store.latency(conn, guids, since=started + warmup_s)
            reconciliation = await store.reconcile(conn, guids, exact=exact, partial=partial)
            if target.nats_url is not None:
                stamped = await _stamped(conn, target, guids, since=started + warmup_s)
        finally:
            await conn.close()
    report = LoadReport(profile, result, watch.samples, latency, reconciliation, drain_s)
    report.stages = stages.stage_latencies(stamped) if stamped else []
    if out is not None:
        write_table(report, out)
    if plot_path is not None:
        path = await asyncio.to_thread(plot, report, plot_path)
        if out is not None:
            out.write(f"plot: {path}\n")
    return report


async def _stamped(
    conn: asyncpg.Connection, target: Target, guids: Sequence[str], *, since: float
) -> list[stages.StampedRow]:
    assert target.nats_url is not None
    rows = await stages.sample_rows(conn, guids, since=since)
    nc = await nats.connect(target.nats_url, max_reconnect_attempts=0)
    try:
        times = await stages.stream_times(nc.jetstream(), target.stream, [r[2] for r in rows])
    finally:
        await nc.close()
    return stages.stamped(rows, times)


def _progress_lines(out: TextIO) -> Callable[[LoadResult], None]:
    ticks = [0]

    def show(result: LoadResult) -> None:
        ticks[0] += 1
        if ticks[0] % _PROGRESS_EVERY_S == 0:
            out.write(
                f"  {time.time() - result.started:4.0f} s  offered {result.total('buffered'):>10,}"
                f"  acked {result.total('events_acked'):>10,}"
                f"  resent {result.total('envelopes_resent'):>6,}\n"
            )
            out.flush()

    return show


def _start_watch(target: Target, result: LoadResult) -> MetricsWatch:
    watch = MetricsWatch(
        result,
        gateway_url=target.gateway_metrics_url,
        aggregator_urls=target.aggregator_metrics_urls,
    )
    watch.start()
    return watch
