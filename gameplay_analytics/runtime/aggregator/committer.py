"""One batch from prepared messages to acks: store, isolate poison, dead-letter, then ack.

Order is the at-least-once promise: rows and sessions commit in one transaction, DLQ entries
are published (deduplicated by their Nats-Msg-Id), and only then is anything acked. Transient
failures retry the failing step with backoff, keeping the messages in progress; a batch
Postgres refuses is stored message by message and the refused ones are dead-lettered.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar, overload

import asyncpg
import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import DlqEntry
from gameplay_analytics.runtime.aggregator import retry
from gameplay_analytics.runtime.aggregator.enrich import DlqItem, PreparedMessage
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings
from gameplay_analytics.runtime.storage import copy_binary, erasure, hot
from gameplay_analytics.runtime.storage.profile import ProfileUpdate, merge_profiles

__all__ = ["Committed", "Committer", "InjectedFault", "Naked", "Outcome", "Stored"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_dlq_encode = msgspec.json.Encoder().encode


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """What Postgres took from a batch, and the messages it refused (as DLQ items)."""

    write: hot.WriteResult
    unstorable: list[DlqItem]


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    """One batch stored, dead-lettered and acked."""

    messages: int
    write: hot.WriteResult
    dlq: list[DlqItem]
    dropped: collections.Counter[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Naked:
    """One batch given back to JetStream after an unexpected error (redelivered later)."""

    messages: int
    error: str


Outcome = Committed | Naked


class InjectedFault(RuntimeError):
    """Thrown by the test-only fault hook (FAULT_COMMIT_RATE > 0, tests/chaos): a bug in the
    commit path, handled like any unexpected error (counted, logged, batch nak'd)."""


class Committer:
    """Commits batches one at a time; `healthy` is False while a step is being retried.

    `stop_deadline()` is the monotonic instant after which a failing batch is given up
    (`retry.GaveUp`) and left unacked for redelivery; None until shutdown.
    """

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        settings: AggregatorSettings,
        metrics: AggregatorMetrics,
        stop_deadline: Callable[[], float | None],
    ) -> None:
        self._pool = pool
        self._js = js
        self._settings = settings
        self._metrics = metrics
        self._stop_deadline = stop_deadline
        self.healthy = True

    async def commit(self, msgs: Sequence[Msg], prepared: Sequence[PreparedMessage]) -> Outcome:
        """Store, dead-letter, ack; raises `retry.GaveUp` if shutdown cut the retries short.

        An error that is neither transient nor poison (a bug, something nobody foresaw) must
        not end the process: it is counted (`kind="unexpected"`), logged with its traceback,
        and the batch is nak'd, to be redelivered after RETRY_MAX_S.
        """
        try:
            return await self._commit(msgs, prepared)
        except retry.GaveUp:
            raise
        except Exception as err:
            return await self.give_back(msgs, err)

    async def give_back(self, msgs: Sequence[Msg], err: Exception) -> Naked:
        """Count, log and nak a batch that failed unexpectedly (commit or preparation)."""
        self._metrics.errors.labels("unexpected").inc()
        log.error(
            "batch of %d messages failed unexpectedly; nak'd for redelivery", len(msgs),
            exc_info=err,
        )  # fmt: skip
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._settings.retry_max_s)
        return Naked(len(msgs), f"{type(err).__name__}: {err}")

    async def _commit(self, msgs: Sequence[Msg], prepared: Sequence[PreparedMessage]) -> Committed:
        self._fault("before storing")
        stored = await self._retrying(lambda: self.store(prepared), msgs)
        self._fault("after storing, before any ack")
        dlq = [item for p in prepared for item in p.dlq] + stored.unstorable
        if dlq:
            dlq = await self._retrying(lambda: self._not_erased(dlq), msgs)
        if dlq:
            await self._retrying(lambda: self.publish_dlq(dlq), msgs)
        for i, msg in enumerate(msgs):
            if i == len(msgs) // 2:
                self._fault(f"after {i} of {len(msgs)} acks")
            await msg.ack()
        dropped: collections.Counter[str] = collections.Counter()
        for p in prepared:
            dropped.update(p.dropped)
        return Committed(len(msgs), stored.write, dlq, dropped)

    def _fault(self, where: str) -> None:
        """The test-only fault hook: raise at random, at FAULT_COMMIT_RATE (0: never)."""
        rate = self._settings.fault_commit_rate
        if rate and random.random() < rate:
            raise InjectedFault(f"injected fault {where} (FAULT_COMMIT_RATE={rate})")

    async def store(self, prepared: Sequence[PreparedMessage]) -> Stored:
        """One transaction for the whole batch; if Postgres refuses the data, per message."""
        rows = _BatchRows(prepared)
        if not rows and not any(p.sessions for p in prepared):
            return Stored(hot.WriteResult(0, 0, False), [])
        try:
            async with self._pool.acquire() as conn:
                return Stored(
                    await hot.write_batch(
                        conn, rows, merge_sessions(prepared), _profiles(prepared),
                        encoded=_encoded(prepared),
                    ),
                    [],
                )  # fmt: skip
        except Exception as err:
            if not retry.is_poison(err):
                raise
            self._metrics.errors.labels("poison").inc()
            return await self._isolate(prepared, err)

    async def _not_erased(self, items: list[DlqItem]) -> list[DlqItem]:
        """The entries minus those of an erased player (privacy erase's tombstones)."""
        ids = {i.entry.analytics_player_id for i in items if i.entry.analytics_player_id}
        if not ids:
            return items
        async with self._pool.acquire() as conn:
            erased = await erasure.erased_among(conn, ids)
        return [i for i in items if i.entry.analytics_player_id not in erased]

    async def publish_dlq(self, items: Sequence[DlqItem]) -> None:
        timeout = self._settings.dlq_publish_timeout_s
        for item in items:
            await self._js.publish(
                self._settings.dlq_subject, _dlq_encode(item.entry), timeout=timeout,
                headers={"Nats-Msg-Id": item.msg_id},
            )  # fmt: skip

    async def _isolate(self, prepared: Sequence[PreparedMessage], first: BaseException) -> Stored:
        """Postgres refused some row: store message by message, dead-letter the refused."""
        log.warning("batch refused by Postgres (%s); isolating the message", type(first).__name__)
        inserted = duplicates = 0
        unstorable: list[DlqItem] = []
        for p in prepared:
            if not p.row_count and not p.sessions:
                continue
            try:
                async with self._pool.acquire() as conn:
                    done = await hot.write_batch(
                        conn, p.rows, merge_sessions([p]), _profiles([p]), encoded=_encoded([p])
                    )
            except Exception as err:
                if not retry.is_poison(err):
                    raise
                unstorable.append(_unstorable(p, err))
                continue
            inserted += done.inserted
            duplicates += done.duplicates
        return Stored(hot.WriteResult(inserted, duplicates, True), unstorable)

    async def _retrying(self, op: Callable[[], Awaitable[_T]], msgs: Sequence[Msg]) -> _T:
        async def failed(err: BaseException, delay: float) -> None:
            self.healthy = False
            self._metrics.errors.labels(retry.error_kind(err)).inc()
            log.warning("batch failed (%s: %s); retrying in %.2fs", type(err).__name__, err, delay)
            for msg in msgs:  # keep JetStream from redelivering what we still hold
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        value = await retry.retrying(
            op, backoff=self._settings.backoff(), on_failure=failed, deadline=self._stop_deadline
        )
        self.healthy = True
        return value


def merge_sessions(prepared: Sequence[PreparedMessage]) -> list[hot.SessionUpdate]:
    """One update per session across the batch (earliest start, latest end)."""
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
    return DlqItem(entry, p.dlq_id)


class _BatchRows(Sequence[hot.EventRow]):
    """A batch's rows, message after message; built only when read one by one (a
    duplicate, an erased player, an unencodable message): the COPY sends `_encoded`."""

    def __init__(self, prepared: Sequence[PreparedMessage]) -> None:
        self._prepared = prepared
        self._count = sum(p.row_count for p in prepared)
        self._rows: list[hot.EventRow] | None = None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> hot.EventRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[hot.EventRow]: ...
    def __getitem__(self, index: int | slice) -> hot.EventRow | Sequence[hot.EventRow]:
        return self._built()[index]

    def __iter__(self) -> Iterator[hot.EventRow]:
        return iter(self._built())

    def _built(self) -> list[hot.EventRow]:
        if self._rows is None:
            self._rows = [row for p in self._prepared for row in p.rows]
        return self._rows


def _encoded(prepared: Sequence[PreparedMessage]) -> copy_binary.Encoded | None:
    """The batch's rows in binary COPY form, if every message's could be encoded."""
    chunks: list[bytes] = []
    players: set[str] = set()
    for p in prepared:
        if p.copy is None:
            if p.row_count:
                return None
        elif p.copy:
            chunks.append(p.copy)
            players |= p.player_ids
    return copy_binary.Encoded(chunks, players)


def _profiles(prepared: Sequence[PreparedMessage]) -> list[ProfileUpdate]:
    """One onboarding-profile update per player across the batch."""
    return merge_profiles(p.profile for p in prepared if p.profile is not None)
