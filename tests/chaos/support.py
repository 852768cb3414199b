"""What every chaos scenario needs: load in the background, a fault, a drain, an exact count.

A scenario runs the load harness against the stack, injects its fault from another task, waits
until JetStream has nothing left for the aggregators, then reconciles the events the players'
SDKs saw acknowledged against Postgres (`LoadResult.promised()`): none missing, none doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import nats

from gameplay_analytics.contract.messages import STREAM
from gameplay_analytics.loadgen import harness
from gameplay_analytics.loadgen.harness import LoadProfile, LoadResult, run_load
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.demo import metric_totals
from gameplay_analytics.local.stack import LocalStack, RuntimeProcess
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector

__all__ = [
    "Figures",
    "RotatingConnector",
    "Scenario",
    "assert_exact",
    "connect",
    "consumer_state",
    "ready",
    "reconcile",
    "wait_drained",
]

_DRAIN_TIMEOUT_S = 60.0
_CONSUMER = "aggregator"  # AggregatorSettings.consumer_name's default, shared by replicas
_UNEXPECTED = "analytics_aggregator_errors_total{kind=unexpected}"


@dataclasses.dataclass
class Figures:
    """One scenario's outcome, printed as one line."""

    name: str
    acked: int = 0
    stored: int = 0
    missing: int = 0
    doubled: int = 0
    duplicates_suppressed: int = 0
    resent: int = 0
    redelivered: int = 0  # most messages awaiting ack after a redelivery, at any one time
    ready_s: float | None = None  # fault → the faulty part is back and ready
    stall_s: float = 0.0  # longest time without a new row in Postgres during the scenario
    drain_s: float = 0.0  # load ended → every JetStream message handled
    unflushed_players: int = 0
    # named recovery times of the scenario's faults (s; None: did not happen in the bound),
    # e.g. "leader_kill.first_ack" (tests/chaos/recovery.py)
    recovery: dict[str, float | None] = dataclasses.field(default_factory=dict)
    faults_injected: int = 0  # commits the aggregators' fault hook failed (FAULT_COMMIT_RATE)
    players: list[str] = dataclasses.field(default_factory=list, repr=False)

    def line(self) -> str:
        ready = "n/a" if self.ready_s is None else f"{self.ready_s:.1f}s"
        recovery = " ".join(
            f"{k}={'n/a' if v is None else f'{v:.1f}s'}" for k, v in self.recovery.items()
        )
        return (
            f"[chaos] {self.name}: acked={self.acked} stored={self.stored} "
            f"missing={self.missing} doubled={self.doubled} "
            f"duplicates_suppressed={self.duplicates_suppressed} resent_envelopes={self.resent} "
            f"redelivered_peak={self.redelivered} ready_after={ready} "
            f"longest_store_stall={self.stall_s:.1f}s drain={self.drain_s:.1f}s "
            f"unflushed_players={self.unflushed_players} faults_injected={self.faults_injected}"
            + (f" recovery: {recovery}" if recovery else "")
        )

    def record(self) -> dict[str, object]:
        """The figures as one JSON object (a line of the results file)."""
        figures = dataclasses.asdict(self)
        del figures["players"]
        return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}


def assert_exact(figures: Figures) -> None:
    """The invariant of every scenario: enough load, nothing acked missing or doubled."""
    assert figures.acked > 1000, f"too little load to prove anything: {figures.line()}"
    assert figures.missing == 0, figures.line()
    assert figures.doubled == 0, figures.line()


async def ready(process: RuntimeProcess, timeout_s: float = 30.0) -> None:
    """Wait (bounded) until a gateway or aggregator answers /readyz."""
    await asyncio.to_thread(process.wait_ready, time.monotonic() + timeout_s)


async def connect(nats_url: str) -> nats.NATS:
    """A probe connection to any URL of `nats_url` (comma-separated for a cluster), bounded:
    `ConnectionError` when every node is down, never nats.py's retry-forever."""
    return await jetstream.connect_once(nats_url, name="chaos-probe", timeout_s=2)


async def consumer_state(nats_url: str) -> tuple[int, int, int]:
    """(num_pending, num_ack_pending, num_redelivered) of the aggregators' durable consumer."""
    nc = await connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(STREAM, _CONSUMER, timeout=2)
        return info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0
    finally:
        await nc.close()


async def wait_drained(stack: LocalStack, timeout_s: float = _DRAIN_TIMEOUT_S) -> float:
    """Seconds until the consumer has nothing pending nor unacked twice in a row (bounded)."""
    started = time.monotonic()
    quiet = 0
    while quiet < 2:
        assert time.monotonic() - started < timeout_s, "JetStream did not drain in time"
        try:
            pending, ack_pending, _ = await consumer_state(stack.nats_url_as(natsauth.ADMIN))
        except Exception:  # nats restarting, consumer not bound yet
            pending = ack_pending = -1
        quiet = quiet + 1 if pending == 0 and ack_pending == 0 else 0
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def reconcile(dsn: str, result: LoadResult, figures: Figures) -> None:
    """Fill acked / stored / missing / doubled for this run's players only."""
    guids = [r.client_guid for r in result.records]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT client_guid::text AS guid, seq, count(*) AS n FROM analytics_events "
            "WHERE client_guid = ANY($1::uuid[]) GROUP BY 1, 2",
            guids,
        )
    finally:
        await conn.close()
    stored = {(r["guid"], r["seq"]): int(r["n"]) for r in rows}
    exact, partial = result.promised()
    figures.acked = result.total("events_acked")
    figures.resent = result.total("envelopes_resent")
    figures.stored = sum(stored.values())
    figures.doubled = sum(n - 1 for n in stored.values() if n > 1)
    figures.missing = len(exact - stored.keys()) + sum(
        max(0, count - sum(1 for seq in seqs if (guid, seq) in stored))
        for guid, seqs, count in partial
    )
    figures.unflushed_players = sum(not r.flushed for r in result.records)
    figures.players = [r.player_uuid for r in result.records]


class _Watch:
    """Background probes during a scenario: Postgres row growth (for the longest stall) and
    the aggregators' dedup counters per process (a SIGKILL takes a process' counters along,
    so the last value seen of each incarnation is kept)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.dedup_seen: dict[tuple[str, int], float] = {}
        self.dedup_base: dict[tuple[str, int], float] = {}
        self.faults_seen: dict[tuple[str, int], float] = {}
        self.faults_base: dict[tuple[str, int], float] = {}
        self.stall_s = 0.0
        self.redelivered_max = 0
        self._task: asyncio.Task[None] | None = None

    async def _scrape(self) -> None:
        with contextlib.suppress(Exception):  # nats may be down: that is the point
            _, _, redelivered = await consumer_state(self.stack.nats_url_as(natsauth.ADMIN))
            self.redelivered_max = max(self.redelivered_max, redelivered)
        for aggregator in self.stack.aggregators:
            pid = aggregator.pid
            if pid is None:
                continue
            try:
                totals = await asyncio.to_thread(metric_totals, aggregator.metrics_url)
            except OSError:
                continue
            self.dedup_seen[(aggregator.role, pid)] = totals.get(
                "analytics_events_deduplicated_total", 0.0
            )
            self.faults_seen[(aggregator.role, pid)] = totals.get(_UNEXPECTED, 0.0)

    async def start(self) -> None:
        await self._scrape()
        self.dedup_base = dict(self.dedup_seen)
        self.faults_base = dict(self.faults_seen)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        conn: asyncpg.Connection | None = None
        last_count, last_change = -1, time.monotonic()
        try:
            while True:
                await self._scrape()
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.stack.postgres.dsn, timeout=1)
                    count = int(await conn.fetchval("SELECT count(*) FROM analytics_events"))
                except Exception:  # Postgres away; asyncpg even raises InternalClientError
                    if conn is not None:
                        conn.terminate()
                    conn = None
                    count = last_count
                now = time.monotonic()
                if count != last_count:
                    last_count, last_change = count, now
                self.stall_s = max(self.stall_s, now - last_change)
                await asyncio.sleep(0.25)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def stop(self) -> int:
        """Stops probing; returns the events the aggregators suppressed as duplicates."""
        await self._scrape()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return _growth(self.dedup_seen, self.dedup_base)

    def faults_injected(self) -> int:
        """Batches given back after an unexpected error: the fault hook's, in these tests."""
        return _growth(self.faults_seen, self.faults_base)


def _growth(seen: dict[tuple[str, int], float], base: dict[tuple[str, int], float]) -> int:
    return int(sum(value - base.get(key, 0.0) for key, value in seen.items()))


@dataclasses.dataclass
class Scenario:
    """Load for `seconds` with `players`; `fault` runs alongside and returns `ready_s`."""

    name: str
    stack: LocalStack
    state_dir: Path
    seed: int
    players: int = 80
    seconds: float = 20.0
    results: Path | None = None  # the JSON-lines file the figures are appended to
    # filled by the fault while it runs: named recovery times (see Figures.recovery)
    recovery: dict[str, float | None] = dataclasses.field(default_factory=dict)

    def profile(self) -> LoadProfile:
        # No deliberate disconnects: the fault is the only disturbance, so resends and
        # duplicates in the figures are the fault's.
        return LoadProfile(
            players=self.players, seconds=self.seconds, ramp_s=2.0, disconnect_share=0.0,
            seed=self.seed, flush_timeout_s=30.0,
        )  # fmt: skip

    async def run(self, fault: Callable[[], Awaitable[float | None]]) -> Figures:
        figures = Figures(self.name)
        watch = _Watch(self.stack)
        await watch.start()
        load = asyncio.create_task(
            run_load(
                self.stack.ws_url,
                jwt_secret=self.stack.config.jwt_secret,
                profile=self.profile(),
                state_dir=self.state_dir,
            )
        )
        try:
            figures.ready_s = await fault()
            result = await load
            figures.drain_s = await wait_drained(self.stack)
        finally:
            if not load.done():
                load.cancel()
                with contextlib.suppress(BaseException):
                    await load
            figures.duplicates_suppressed = await watch.stop()
        figures.stall_s = watch.stall_s
        figures.redelivered = watch.redelivered_max
        figures.recovery = dict(self.recovery)
        figures.faults_injected = watch.faults_injected()
        await reconcile(self.stack.postgres.dsn, result, figures)
        print(figures.line())
        if self.results is not None:
            with self.results.open("a") as out:
                out.write(json.dumps(figures.record()) + "\n")
        return figures


class RotatingConnector(WebSocketConnector):
    """The SDK's connector over several gateway URLs: each new connection attempt goes to the
    next URL, so a client whose gateway closes (1001) or refuses (503, connection refused)
    lands on another one and resends what was not acknowledged. A Service or load balancer
    does this in production; the SDK's connector takes one URL."""

    def __init__(self, client: AnalyticsClient, urls: list[str], **kwargs: object) -> None:
        super().__init__(client, urls[0], **kwargs)  # type: ignore[arg-type]
        self.urls = urls
        self._next = 0

    async def _session(self) -> None:
        try:
            await super()._session()
        finally:
            self._next = (self._next + 1) % len(self.urls)
            self.url = self.urls[self._next]


def rotating_connectors(monkeypatch: object, fallback_urls: list[str]) -> None:
    """Make the load harness build `RotatingConnector`s: its URL first, then `fallback_urls`.

    The harness builds its connectors itself (no factory parameter), so the test swaps the
    name it looks up; see the report about giving `run_load` a connector factory."""

    def factory(client: AnalyticsClient, url: str, **kwargs: object) -> WebSocketConnector:
        return RotatingConnector(client, [url, *fallback_urls], **kwargs)

    monkeypatch.setattr(harness, "WebSocketConnector", factory)  # type: ignore[attr-defined]
