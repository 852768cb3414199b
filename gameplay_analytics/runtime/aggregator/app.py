"""The aggregator process: a durable JetStream pull consumer that stores events, then acks.

Per batch: prepare every message (validate, guard, pseudonymise, enrich), write rows and
sessions to Postgres in one transaction, publish DLQ entries, and only then ack. Transient
failures retry the whole batch with backoff, unacked; SIGTERM finishes the batch in hand.
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
from typing import Any, TypeVar

import asyncpg
import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from gameplay_analytics.contract.messages import DLQ_SUBJECT, EVENTS_SUBJECT, STREAM, DlqEntry
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.privacy.geoip import GeoIP, open_geoip
from gameplay_analytics.privacy.pseudonym import SALT_SECRET_ENV, Pseudonymiser, load_salt_book
from gameplay_analytics.runtime import config, jetstream
from gameplay_analytics.runtime.aggregator import retry
from gameplay_analytics.runtime.aggregator.enrich import DlqItem, Enricher, PreparedMessage
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings
from gameplay_analytics.runtime.probes import ProbeServer
from gameplay_analytics.runtime.storage import hot, maintenance, schema, warm

__all__ = ["Aggregator", "AggregatorStats", "run_aggregator"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_MAX_ACK_PENDING = 50_000
_MAX_EVENTS_PER_MESSAGE = 100_000  # the gateway caps envelopes; a replay may carry more
_COMMAND_TIMEOUT_S = 60.0
_DLQ_PUBLISH_TIMEOUT_S = 5.0
_FLUSH_TIMEOUT_S = 5
_dlq_encode = msgspec.json.Encoder().encode


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Abandoned(Exception):
    """Shutdown ran out of time while a batch was still failing: leave it for redelivery."""


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
        self.clock = clock
        self._start_sequence = start_sequence
        self._schemas = schemas or SchemaRegistry.from_released(max_events=_MAX_EVENTS_PER_MESSAGE)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._pool: asyncpg.Pool | None = None
        self._geoip: GeoIP | None = None
        self._enricher: Enricher | None = None
        self._store: warm.WarmStore | None = None
        self._probes: ProbeServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._stop_deadline: float | None = None
        self._healthy = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, migrate, create today's partitions, bind the consumer, serve probes."""
        s = self.settings
        secret = s.salt_secret.get_secret_value() if s.salt_secret else ""
        salts = load_salt_book(
            secret_file=s.salt_secret_file, env={SALT_SECRET_ENV: secret} if secret else {}
        )
        if salts.development:
            log.warning("no salt secret configured: player ids use the public development salt")
        self._geoip = open_geoip(s.geoip_db)
        self._enricher = Enricher(
            pseudonymiser=Pseudonymiser(salts), registry=self._schemas, geoip=self._geoip,
            bounds=s.time_bounds(),
        )  # fmt: skip
        self._probes = ProbeServer(
            port=s.metrics_port, ready=self.ready, registry=self.metrics.registry
        )
        await self._probes.start()
        self._pool = await self._retry_forever("postgres", self._open_pool)
        if s.warehouse_root:
            self._store = warm.WarmStore(
                s.warehouse_root, endpoint=s.s3_endpoint, region=s.s3_region
            )
        # Today's partitions before the first write; the export and retentions, which may
        # take a while, run in the background loop (its first pass right away).
        await maintenance.prepare_partitions(
            self.pool, now=self.clock(), policy=self.settings.maintenance_policy()
        )
        self._nc = await jetstream.connect(s.nats_url, name=f"aggregator-{s.consumer_name}")
        self._js = self._nc.jetstream()
        await jetstream.ensure_stream(self._js, jetstream.StreamSettings.model_validate({}))
        self._sub = await self._js.pull_subscribe(
            EVENTS_SUBJECT, durable=s.consumer_name, stream=STREAM, config=self._consumer_config()
        )
        watcher = config.ConfigWatcher(
            nc=self._nc,
            js=self._js,
            initial=config.LiveConfig.of(config.default_rules(), self._schemas),
            on_change=self._on_config,
            max_events=_MAX_EVENTS_PER_MESSAGE,
            narrow_to_accepted=False,  # store whatever a gateway accepted, even if retired since
        )
        self._healthy = True
        self._tasks = [
            asyncio.create_task(self._every(s.maintenance_interval_s, self._maintain_tick, 0.0)),
            asyncio.create_task(self._every(s.lag_interval_s, self._read_lag, 0.0)),
            asyncio.create_task(watcher.run(), name="aggregator-config-watch"),
        ]

    async def run(self) -> None:
        """Consume until `request_stop()`; the batches in hand are finished first.

        Two batches overlap: while one is being committed (Postgres busy with the COPY), the
        next is fetched and prepared. Commits stay one at a time, in fetch order.
        """
        assert self._sub is not None, "start() first"
        backoff = retry.Backoff(self.settings.retry_base_s, self.settings.retry_max_s)
        inflight: asyncio.Task[None] | None = None
        held: list[Msg] = []
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await self._sub.fetch(
                        self.settings.batch_size, timeout=self.settings.fetch_timeout_s
                    )
                except nats.errors.TimeoutError:
                    continue
                except retry.TRANSIENT as err:
                    self.metrics.errors.labels(retry.error_kind(err)).inc()
                    await self._sleep(backoff.next_delay())
                    continue
                backoff.reset()
                held = [*held, *msgs]
                prepared = self._prepare(msgs)
                if inflight is not None:
                    await inflight
                held = list(msgs)
                inflight = asyncio.create_task(self._commit(msgs, prepared, time.perf_counter()))
            if inflight is not None:
                await inflight
        except _Abandoned:
            log.warning("shutdown: leaving %d unstored messages for redelivery", len(held))
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.nak()
        finally:
            if inflight is not None and not inflight.done():
                inflight.cancel()

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
                await self._nc.flush(timeout=_FLUSH_TIMEOUT_S)  # acks sent before we go
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 10)
            self._pool = None
        if self._probes is not None:
            await self._probes.close()
        if self._geoip is not None:
            self._geoip.close()

    def ready(self) -> bool:
        return self._healthy and self._nc is not None and self._nc.is_connected

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

    async def process(self, msgs: Sequence[Msg]) -> None:
        """Store, dead-letter and ack one fetched batch (at-least-once, exactly-once rows)."""
        await self._commit(msgs, self._prepare(msgs), time.perf_counter())

    def _prepare(self, msgs: Sequence[Msg]) -> list[PreparedMessage]:
        assert self._enricher is not None
        now_ms = int(time.time() * 1000)
        return [
            self._enricher.prepare(m.data, stream_seq=m.metadata.sequence.stream, now_ms=now_ms)
            for m in msgs
        ]

    async def _commit(
        self, msgs: Sequence[Msg], prepared: list[PreparedMessage], started: float
    ) -> None:
        result = await self._retry(lambda: self._store_rows(prepared), msgs)
        dlq = [item for p in prepared for item in p.dlq]
        if dlq:
            await self._retry(lambda: self._publish_dlq(dlq), msgs)
        for msg in msgs:
            await msg.ack()
        self._count(prepared, result, len(msgs))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _store_rows(self, prepared: list[PreparedMessage]) -> hot.WriteResult:
        rows = [row for p in prepared for row in p.rows]
        if not rows and not any(p.sessions for p in prepared):
            return hot.WriteResult(0, 0, False)
        try:
            async with self.pool.acquire() as conn:
                return await hot.write_batch(conn, rows, _merge_sessions(prepared))
        except Exception as err:
            if not retry.is_poison(err):
                raise
            self.metrics.errors.labels("poison").inc()
            return await self._isolate(prepared, err)

    async def _isolate(
        self, prepared: list[PreparedMessage], first: BaseException
    ) -> hot.WriteResult:
        """Postgres refused some row: store message by message, dead-letter the refused."""
        log.warning("batch refused by Postgres (%s); isolating the message", type(first).__name__)
        inserted = duplicates = 0
        for p in prepared:
            if not p.rows and not p.sessions:
                continue
            try:
                async with self.pool.acquire() as conn:
                    done = await hot.write_batch(conn, p.rows, _merge_sessions([p]))
            except Exception as err:
                if not retry.is_poison(err):
                    raise
                p.dlq = [_unstorable(p, err)]
                p.rows, p.sessions = [], []
                continue
            inserted += done.inserted
            duplicates += done.duplicates
        return hot.WriteResult(inserted, duplicates, True)

    async def _publish_dlq(self, items: list[DlqItem]) -> None:
        assert self._js is not None
        for item in items:
            await self._js.publish(
                DLQ_SUBJECT, _dlq_encode(item.entry), timeout=_DLQ_PUBLISH_TIMEOUT_S,
                headers={"Nats-Msg-Id": item.msg_id},
            )  # fmt: skip

    def _count(self, prepared: list[PreparedMessage], result: hot.WriteResult, n: int) -> None:
        m, st = self.metrics, self.stats
        m.persisted.inc(result.inserted)
        m.duplicates.inc(result.duplicates)
        m.messages.inc(n)
        m.observe_committed((row for p in prepared for row in p.rows), time.time())
        st.persisted += result.inserted
        st.deduplicated += result.duplicates
        st.messages += n
        st.batches += 1
        for p in prepared:
            for reason, count in p.dropped.items():
                m.dropped.labels(reason).inc(count)
                st.dropped[reason] += count
            for item in p.dlq:
                m.dlq.labels(item.entry.reason).inc()
                st.dlq[item.entry.reason] += 1

    async def _retry(self, op: Callable[[], Awaitable[_T]], msgs: Sequence[Msg]) -> _T:
        backoff = retry.Backoff(self.settings.retry_base_s, self.settings.retry_max_s)
        while True:
            try:
                value = await op()
            except retry.TRANSIENT as err:
                self._healthy = False
                self.metrics.errors.labels(retry.error_kind(err)).inc()
                delay = backoff.next_delay()
                log.warning(
                    "batch failed (%s: %s); retrying in %.2fs", type(err).__name__, err, delay
                )
                if (
                    self._stop_deadline is not None
                    and time.monotonic() + delay > self._stop_deadline
                ):
                    raise _Abandoned from err
                for msg in msgs:  # keep JetStream from redelivering what we still hold
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                await asyncio.sleep(delay)
                continue
            self._healthy = True
            return value

    # -- background ------------------------------------------------------------------------

    async def _open_pool(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self.settings.postgres_dsn, min_size=1, max_size=self.settings.pool_size,
            command_timeout=_COMMAND_TIMEOUT_S,
        )  # fmt: skip
        async with pool.acquire() as conn:
            await schema.migrate(conn)
        return pool

    async def _retry_forever(self, what: str, op: Callable[[], Awaitable[_T]]) -> _T:
        backoff = retry.Backoff(self.settings.retry_base_s, self.settings.retry_max_s)
        while True:
            try:
                return await op()
            except retry.TRANSIENT as err:
                self.metrics.errors.labels(retry.error_kind(err)).inc()
                delay = backoff.next_delay()
                log.warning("%s not reachable (%s); retrying in %.2fs", what, err, delay)
                await asyncio.sleep(delay)

    async def _every(
        self, interval: float, tick: Callable[[], Awaitable[None]], first: float
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

    async def _read_lag(self) -> None:
        assert self._sub is not None
        info = await self._sub.consumer_info()
        self.metrics.lag.set(info.num_pending or 0)
        self.metrics.ack_pending.set(info.num_ack_pending or 0)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def _consumer_config(self) -> ConsumerConfig:
        config: dict[str, Any] = {
            "ack_policy": AckPolicy.EXPLICIT,
            "ack_wait": self.settings.ack_wait_s,
            "max_ack_pending": _MAX_ACK_PENDING,
            "filter_subject": EVENTS_SUBJECT,
        }
        if self._start_sequence is not None:
            config["deliver_policy"] = DeliverPolicy.BY_START_SEQUENCE
            config["opt_start_seq"] = self._start_sequence
        return ConsumerConfig(**config)


def _merge_sessions(prepared: Sequence[PreparedMessage]) -> list[hot.SessionUpdate]:
    merged: dict[str, hot.SessionUpdate] = {}
    for p in prepared:
        for update in p.sessions:
            found = merged.get(update.session_id)
            if found is None:
                merged[update.session_id] = dataclasses.replace(update)
            else:
                found.merge(update)
    return list(merged.values())


def _unstorable(p: PreparedMessage, err: BaseException) -> DlqItem:
    entry = DlqEntry(
        source="aggregator", reason="unstorable", detail=f"postgres: {type(err).__name__}",
        at=int(time.time() * 1000), analytics_player_id=p.analytics_player_id,
        client_guid=p.client_guid, schema_version=p.schema_version, stream_seq=p.stream_seq,
    )  # fmt: skip
    return DlqItem(entry, f"aggregator-dlq-{p.stream_seq}")


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
        if started is not None:
            started.set()
        await aggregator.run()
    finally:
        await aggregator.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
