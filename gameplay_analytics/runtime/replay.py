"""Replay and backfill: rebuild warm-store days (and the hot store's recent ones) from history.

Sources yield JetStream-format messages (`contract.messages`): the stream itself by sequence
or time range, JSONL captures of such messages, or simulation snapshots turned into raw
(format-1) messages by a `SnapshotAdapter`. Each message goes through the aggregator's own
`Enricher`, given the gateway's keys so that it seals raw input with the edge step
(`privacy/edge.py`): validation, redaction, the time bounds and the pseudonym of each event's
*own* month are exactly what live ingestion does; rows then go through the hot
store's writer (dedup on the event key, erased players dropped) and the warm export merges
them into their days by key. Replaying twice changes nothing: the second run finds every event
already stored. Refused events are counted as dead-lettered, not published again (the live
pipeline already dead-lettered them once).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

import asyncpg
import msgspec
import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gameplay_analytics.contract.messages import (
    PublishedEvent,
    RawEventBatch,
    encode_batch,
    split_events,
)
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.aggregator.enrich import Enricher, PreparedMessage
from gameplay_analytics.runtime.storage import hot, maintenance, schema, warm

__all__ = [
    "ADAPTERS",
    "ReplayCounts",
    "SnapshotAdapter",
    "TickSnapshotAdapter",
    "from_jsonl",
    "from_snapshots",
    "from_stream",
    "replay",
]

Message = tuple[int, bytes]
"""(stream sequence, or 0 outside the stream; the message's bytes)."""

_BATCH: Final = 500
_FETCH_TIMEOUT_S: Final = 1.0


@dataclasses.dataclass(slots=True)
class ReplayCounts:
    """The final figures: events read, newly stored, already there, refused."""

    messages: int = 0
    read: int = 0
    stored: int = 0
    deduplicated: int = 0
    dead_lettered: int = 0
    dropped: int = 0  # consent or sampling, as live ingestion would have
    days: list[dt.date] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        return (
            f"read {self.read} events in {self.messages} messages: stored {self.stored}, "
            f"deduplicated {self.deduplicated}, dead-lettered {self.dead_lettered}, "
            f"dropped {self.dropped}; warm days {', '.join(map(str, self.days)) or 'none'}"
        )


# -- sources ---------------------------------------------------------------------------------


async def from_stream(
    nats_url: str,
    *,
    stream: str,
    subject: str,
    start_seq: int | None = None,
    end_seq: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> AsyncIterator[Message]:
    """The stream's messages from a sequence or a time, up to `end_seq` / `until` or the end;
    an ephemeral consumer that acks nothing (the aggregator's durable one is not touched)."""
    if start_seq is not None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=start_seq)  # fmt: skip
    elif since is not None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                opt_start_time=since.astimezone(dt.UTC))  # fmt: skip
    else:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    config.ack_policy, config.inactive_threshold = AckPolicy.NONE, 30.0
    nc = await jetstream.connect_once(nats_url, name="replay")
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        if not info.state.messages:
            return
        sub = await js.pull_subscribe(subject, stream=stream, config=config)
        try:
            while True:
                try:
                    msgs = await sub.fetch(_BATCH, timeout=_FETCH_TIMEOUT_S)
                except (nats.errors.TimeoutError, TimeoutError):
                    return
                for msg in msgs:
                    meta = msg.metadata
                    if end_seq is not None and meta.sequence.stream > end_seq:
                        return
                    if until is not None and meta.timestamp > until:
                        return
                    yield meta.sequence.stream, msg.data
                if msgs and msgs[-1].metadata.num_pending == 0:
                    return
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def from_jsonl(paths: Iterable[Path]) -> Iterator[Message]:
    """One JetStream message (EventBatch JSON) per line; blank lines are skipped. A line that
    is not a message is passed on as it is, and counted as dead-lettered like live."""
    for path in paths:
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    yield 0, line.strip()


class SnapshotAdapter(Protocol):
    """Turns one simulation snapshot file into the messages its players would have sent, in
    the raw format (the replay's enricher runs the edge step on them)."""

    def batches(self, path: Path) -> Iterator[RawEventBatch]: ...


class TickSnapshotAdapter:
    """Server tick snapshots as the load and feature tests store them, one JSON file each:
    `{"ts": ms, "shard": "eu-1", "region": "eu-west", "players": [{"player_uuid", "client_guid",
    "session_id", "build", "platform", "events": [{"seq", "name", "ts", "props"}]}]}`; each
    player's events become one message received at the snapshot's time."""

    def batches(self, path: Path) -> Iterator[RawEventBatch]:
        doc = json.loads(path.read_text())
        for player in doc.get("players", []):
            events = [msgspec.convert(e, PublishedEvent) for e in player.get("events", [])]
            yield RawEventBatch(
                session_id=player["session_id"], player_uuid=player["player_uuid"],
                client_guid=player["client_guid"], schema_version=doc.get("schema", "1.0.0"),
                received_at=int(doc["ts"]), events=events, shard=doc.get("shard"),
                region=doc.get("region"), build=player.get("build"),
                platform=player.get("platform"),
            )  # fmt: skip


ADAPTERS: Final[dict[str, Callable[[], SnapshotAdapter]]] = {"tick": TickSnapshotAdapter}
"""Snapshot formats by name (`replay --snapshots DIR --adapter NAME`)."""


def from_snapshots(paths: Iterable[Path], adapter: SnapshotAdapter) -> Iterator[Message]:
    for path in paths:
        for batch in adapter.batches(path):
            yield 0, encode_batch(batch)


# -- the replay ------------------------------------------------------------------------------


async def replay(
    messages: AsyncIterator[Message] | Iterable[Message],
    *,
    enricher: Enricher,
    pool: asyncpg.Pool,
    store: warm.WarmStore | None,
    now: dt.datetime,
    progress: Callable[[ReplayCounts], None] = lambda _: None,
) -> ReplayCounts:
    """Store every message's events, then merge the closed days they touched into the warm
    store; `progress` is called after each batch of messages.

    What counts as stored: for a closed day (before today), the rows the warm store gained;
    for today, the rows the hot store gained (the live export takes them when the day ends).
    """
    counts = ReplayCounts()
    now_ms = int(now.timestamp() * 1000)
    today = now.astimezone(dt.UTC).date()
    per_day: collections.Counter[dt.date] = collections.Counter()
    async with pool.acquire() as conn:
        await schema.migrate(conn)
    pending: list[PreparedMessage] = []
    async for seq, data in _aiter(messages):
        counts.messages += 1
        for part_index, part in enumerate(split_events(data)):
            prepared = enricher.prepare(part, stream_seq=seq, now_ms=now_ms, part=part_index)
            dropped = sum(prepared.dropped.values())
            counts.read += len(prepared.rows) + len(prepared.dlq) + dropped
            counts.dead_lettered += len(prepared.dlq)
            counts.dropped += dropped
            per_day.update(row[_DAY] for row in prepared.rows)
            pending.append(prepared)
        if len(pending) >= _BATCH:
            counts.stored += await _write(pool, pending, today=today, all_new=store is None)
            pending = []
            progress(counts)
    counts.stored += await _write(pool, pending, today=today, all_new=store is None)
    closed = sorted(d for d in per_day if d < today)
    if store is not None and closed:
        async with pool.acquire() as lock_conn, maintenance.exclusive(lock_conn):
            for day in closed:
                before = await asyncio.to_thread(_warm_rows, store, day)
                await store.export_day(pool, day)
                gained = await asyncio.to_thread(_warm_rows, store, day) - before
                counts.stored += min(max(gained, 0), per_day[day])
        counts.days = closed
    counts.deduplicated = sum(per_day.values()) - counts.stored
    progress(counts)
    return counts


_DAY: Final = schema.EVENT_COLUMNS.index("event_day")


async def _write(
    pool: asyncpg.Pool, prepared: list[PreparedMessage], *, today: dt.date, all_new: bool
) -> int:
    """Write rows and sessions; returns how many of today's (or later) rows were new, or of
    all rows with `all_new` (no warm store to judge the older days by)."""
    sessions: dict[str, hot.SessionUpdate] = {}
    for p in prepared:
        for update in p.sessions:
            known = sessions.get(update.session_id)
            if known is None:
                sessions[update.session_id] = update
            else:
                known.merge(update)
    rows = [row for p in prepared for row in p.rows]
    recent = [row for row in rows if row[_DAY] >= today]
    older = [row for row in rows if row[_DAY] < today]
    async with pool.acquire() as conn:
        new = (await hot.write_batch(conn, recent, sessions.values())).inserted
        if older:
            inserted = (await hot.write_batch(conn, older)).inserted
            new += inserted if all_new else 0
    return new


def _warm_rows(store: warm.WarmStore, day: dt.date) -> int:
    table = store.read_day(day)
    return 0 if table is None else table.num_rows


async def _aiter(source: AsyncIterator[Message] | Iterable[Message]) -> AsyncIterator[Message]:
    if isinstance(source, AsyncIterator):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item
