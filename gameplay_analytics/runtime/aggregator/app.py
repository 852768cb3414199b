"""The aggregator process: start, consume until SIGTERM, finish the batch in hand, close.

`Consumer` fetches, `Enricher` prepares (validate, guard, enrich), `Committer`
stores, dead-letters and acks; this module owns the lifecycle, overlapping one batch's fetch
and preparation with the previous batch's commit, and the background tasks (maintenance, lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from gameplay_analytics.contract import messages
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.runtime import config, jetstream
from gameplay_analytics.runtime.aggregator import retry
from gameplay_analytics.runtime.aggregator.committer import Committed, Committer, Outcome
from gameplay_analytics.runtime.aggregator.consumer import Consumer
from gameplay_analytics.runtime.aggregator.enrich import Enricher, PreparedMessage
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics
from gameplay_analytics.runtime.aggregator.payload_log import PayloadSampler
from gameplay_analytics.runtime.aggregator.pipeline import Pipeline
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings
from gameplay_analytics.runtime.gcpolicy import tune_gc
from gameplay_analytics.runtime.probes import ProbeServer
from gameplay_analytics.runtime.storage import maintenance, schema, warm, warm_probe

__all__ = ["Aggregator", "AggregatorStats", "run_aggregator"]

log = logging.getLogger(__name__)

_MAX_EVENTS_PER_MESSAGE = 100_000  # the gateway caps envelopes; a replay may carry more


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(slots=True)
class AggregatorStats:
    """Running totals for in-process callers (`demo`'s report); metrics say the same."""

    messages: int = 0
    batches: int = 0
    persisted: int = 0
    deduplicated: int = 0
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)
    dlq: Counter[str] = dataclasses.field(default_factory=Counter)


class Aggregator:
    """One aggregator replica: `await start()`, `await run()` until `request_stop()`, `close()`.

    `clock` is what maintenance believes now is (tests move it); `start_sequence` makes a
    *new* durable consumer begin at that stream sequence instead of the stream's start.
    """

    def __init__(
        self,
        settings: AggregatorSettings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        start_sequence: int | None = None,
        schemas: SchemaRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = AggregatorMetrics(registry)
        self.stats = AggregatorStats()
        self._payload_log = PayloadSampler(settings.payload_log_rate)
        self.clock = clock
        self._start_sequence = start_sequence
        self._schemas = schemas or SchemaRegistry.from_released(max_events=_MAX_EVENTS_PER_MESSAGE)
        self._nc: Client | None = None
        self._consumer: Consumer | None = None
        self._committer: Committer | None = None
        self._pool: asyncpg.Pool | None = None
        self._enricher: Enricher | None = None
        self._store: warm.WarmStore | None = None
        self._warm_probe: warm_probe.WarmStoreProbe | None = None
        self._probes: ProbeServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._stop_deadline: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, migrate, create today's partitions, bind the consumer, serve probes."""
        s = self.settings
        self._enricher = Enricher(registry=self._schemas, bounds=s.time_bounds())
        self._probes = ProbeServer(
            port=s.metrics_port, ready=self.ready, registry=self.metrics.registry,
            reason=self.not_ready_reason,
        )  # fmt: skip
        await self._probes.start()

        async def unreachable(err: BaseException, delay: float) -> None:
            self.metrics.errors.labels(retry.error_kind(err)).inc()
            log.warning("postgres not reachable (%s); retrying in %.2fs", err, delay)

        self._pool = await retry.retrying(
            self._open_pool, backoff=s.backoff(), on_failure=unreachable
        )
        if s.warehouse_root:
            self._store = warm.WarmStore(
                s.warehouse_root, endpoint=s.s3_endpoint, region=s.s3_region
            )
            self._warm_probe = warm_probe.WarmStoreProbe(self._store)
        # Today's partitions before the first write; the export and retentions, which may
        # take a while, run in the background loop (its first pass right away).
        await maintenance.prepare_partitions(
            self.pool, now=self.clock(), policy=self.settings.maintenance_policy()
        )
        self._nc = await jetstream.connect(s, name=f"aggregator-{s.consumer_name}")
        js = self._nc.jetstream()
        await jetstream.verify(js, s.names(), url=s.nats_url)  # the operator's, or `up`'s
        self._consumer = Consumer(
            js, s, self.metrics, stopping=self._stopping, start_sequence=self._start_sequence
        )
        await self._consumer.bind()
        self._committer = Committer(
            pool=self.pool, js=js, settings=s, metrics=self.metrics,
            stop_deadline=lambda: self._stop_deadline,
        )  # fmt: skip
        watcher = config.ConfigWatcher(
            nc=self._nc,
            js=js,
            bucket=s.config_bucket,
            initial=config.cold_start(
                config.LiveConfig.of(config.default_rules(), self._schemas),
                sampling_file=s.sampling_file,
                schemas_file=s.schemas_file,
                max_events=_MAX_EVENTS_PER_MESSAGE,
                narrow=False,
            ),
            on_change=self._on_config,
            max_events=_MAX_EVENTS_PER_MESSAGE,
            narrow_to_accepted=False,  # store whatever a gateway accepted, even if retired since
        )
        self._tasks = [
            asyncio.create_task(self._every(s.maintenance_interval_s, self._maintain_tick, 0.0)),
            asyncio.create_task(self._every(s.lag_interval_s, self._consumer.read_lag, 0.0)),
            *([asyncio.create_task(self._warm_probe.run())] if self._warm_probe else []),
            asyncio.create_task(watcher.run(), name="aggregator-config-watch"),
        ]

    async def run(self) -> None:
        """Consume until `request_stop()`; the batches in hand are finished first.

        While one batch commits (Postgres busy with the COPY), what arrives meanwhile is
        fetched and prepared, and committed next (`pipeline.Pipeline`). Commits stay one at a
        time, in fetch order.
        """
        assert self._consumer is not None, "start() first"
        await Pipeline(
            fetch=self._consumer.fetch, prepare=self._prepare, commit=self._commit,
            give_back=self.committer.give_back, max_messages=self.settings.batch_size,
            stopping=self._stopping,
        ).run()  # fmt: skip

    @property
    def schema_versions(self) -> list[str]:
        """The event schema versions this aggregator stores (shipped + hot-reloaded)."""
        return self._enricher.schema_versions if self._enricher else self._schemas.versions

    def _on_config(self, live: config.LiveConfig) -> None:
        """Schema versions published by the operator (SchemaVersion resources) take effect
        here as in the gateways, so what a gateway accepts is never dead-lettered here."""
        if self._enricher is not None:
            self._enricher.use_registry(live.registry)

    def request_stop(self) -> None:
        """SIGTERM: stop fetching; the batch in hand may keep retrying for the shutdown
        timeout, then is left unacked for another replica."""
        if not self._stopping.is_set():
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout_s
            self._stopping.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=int(self.settings.close_timeout_s))  # acks out
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), self.settings.close_timeout_s)
            self._pool = None
        if self._probes is not None:
            await self._probes.close()

    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        if self._committer is None:
            return "starting"
        if not self._committer.healthy:
            return "postgres writes failing"
        if self._nc is None or not self._nc.is_connected:
            return "not connected to NATS"
        if self._warm_probe is not None:
            return self._warm_probe.problem
        return None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool

    @property
    def probe_port(self) -> int | None:
        return self._probes.port if self._probes else None

    async def maintain(
        self, *, now: dt.datetime | None = None, wait: bool = False
    ) -> maintenance.MaintenanceReport | None:
        """One maintenance pass (partitions, export, retentions) at `now` (default: clock)."""
        return await maintenance.run_maintenance(
            self.pool, now=now or self.clock(), policy=self.settings.maintenance_policy(),
            store=self._store, wait=wait,
        )  # fmt: skip

    # -- one batch -------------------------------------------------------------------------

    @property
    def committer(self) -> Committer:
        assert self._committer is not None, "start() first"
        return self._committer

    async def process(self, msgs: Sequence[Msg]) -> Outcome:
        """Store, dead-letter and ack one fetched batch (at-least-once, exactly-once rows)."""
        return await self._commit(msgs, await self._prepare(msgs), time.perf_counter())

    async def _prepare(self, msgs: Sequence[Msg]) -> list[PreparedMessage]:
        """Prepare message by message, letting the loop run in between: the previous batch's
        COPY is fed from this thread too, and Postgres should not wait for a whole batch."""
        assert self._enricher is not None
        now_ms = int(time.time() * 1000)
        enricher, prepared = self._enricher, []
        for m in msgs:
            seq = m.metadata.sequence.stream
            for i, part in enumerate(messages.split_events(m.data)):
                prepared.append(enricher.prepare(part, stream_seq=seq, now_ms=now_ms, part=i))
            await asyncio.sleep(0)
        return prepared

    async def _commit(
        self, msgs: Sequence[Msg], prepared: list[PreparedMessage], started: float
    ) -> Outcome:
        outcome = await self.committer.commit(msgs, prepared)
        if isinstance(outcome, Committed):
            self._count(outcome)
            refused = {i.entry.stream_seq for i in outcome.dlq if i.entry.reason == "unstorable"}
            self._payload_log.offer([p for p in prepared if p.stream_seq not in refused])
            self.metrics.observe_committed((p.event_ms for p in prepared), time.time())
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return outcome

    def _count(self, done: Committed) -> None:
        m, st = self.metrics, self.stats
        m.persisted.inc(done.write.inserted)
        m.duplicates.inc(done.write.duplicates)
        m.messages.inc(done.messages)
        st.persisted += done.write.inserted
        st.deduplicated += done.write.duplicates
        st.messages += done.messages
        st.batches += 1
        for reason, count in done.dropped.items():
            m.dropped.labels(reason).inc(count)
            st.dropped[reason] += count
        for item in done.dlq:
            m.dlq.labels(item.entry.reason).inc()
            st.dlq[item.entry.reason] += 1

    # -- background ------------------------------------------------------------------------

    async def _open_pool(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self.settings.postgres_dsn, min_size=1, max_size=self.settings.pool_size,
            command_timeout=self.settings.command_timeout_s,
        )  # fmt: skip
        async with pool.acquire() as conn:
            await schema.migrate(conn)
        return pool

    async def _every(
        self, interval: float, tick: Callable[[], Awaitable[object]], first: float
    ) -> None:
        delay = first
        while True:
            await asyncio.sleep(delay)
            delay = interval
            try:
                await asyncio.wait_for(tick(), timeout=max(interval, 60.0) * 10)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.metrics.errors.labels("background").inc()
                log.warning("background task %s failed: %s", tick.__name__, err)

    async def _maintain_tick(self) -> None:
        report = await self.maintain()
        if report is not None and (report.created or report.exported or report.warm_deleted):
            log.info("maintenance: %s", report)


async def run_aggregator(
    settings: AggregatorSettings, *, started: asyncio.Event | None = None
) -> None:
    """The process: start, consume until SIGTERM/SIGINT, finish the batch in hand, close."""
    aggregator = Aggregator(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, aggregator.request_stop)
    try:
        await aggregator.start()
        tune_gc()
        if started is not None:
            started.set()
        await aggregator.run()
    finally:
        await aggregator.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
