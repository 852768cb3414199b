"""Erasure and access requests (PROTOCOL.md §7) across every store the pipeline writes.

The player's raw UUID exists only in memory here: it is turned into one pseudonym per salt
month that any store may still hold (the warm retention's months, plus the month of every day
actually stored, so a far-future or late day is not missed), and into a matcher for the
stream's own messages. Nothing below logs it, and the audit row holds counts only.

Erase order, under the maintenance lock (so no export or retention pass runs in between):
tombstones and hot rows in one transaction, then the warm Parquet days, then the DLQ and
event messages in JetStream; the audit row last. A crash half-way leaves the tombstones, and
a re-run finishes the rest: every step finds only what is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, Final

import asyncpg

from gameplay_analytics.contract.messages import DLQ_SUBJECT, EVENTS_SUBJECT, STREAM
from gameplay_analytics.privacy.profile import DEVELOPMENT_PROFILE_SECRET, profile_key
from gameplay_analytics.privacy.pseudonym import Pseudonymiser, month_of, months_between
from gameplay_analytics.runtime import jetstream, stream_erasure
from gameplay_analytics.runtime.storage import (
    erasure,
    maintenance,
    partitions,
    schema,
    warm_erasure,
)
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root

__all__ = ["PrivacyStores", "RequestResult", "access_player", "erase_player", "request_months"]

log = logging.getLogger(__name__)

_FUTURE_MARGIN: Final = dt.timedelta(days=1)
_NATS_TIMEOUT_S: Final = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class PrivacyStores:
    """Where the pipeline keeps data; the hot store is required (it holds the audit)."""

    postgres_dsn: str
    warehouse_root: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    nats_url: str | None = None
    stream: str = STREAM
    events_subject: str = EVENTS_SUBJECT
    dlq_subject: str = DLQ_SUBJECT
    warm_retention_days: int = 183
    event_messages: bool = True  # also scan `analytics.events` (the raw UUID, until max_age)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestResult:
    """What one request found (access) or removed (erase), per store."""

    request_id: uuid.UUID
    kind: str
    rows_by_store: dict[str, int]
    records: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows_by_store.values())


def request_months(
    *, today: dt.date, warm_retention_days: int, stored_days: set[dt.date]
) -> list[str]:
    """Every salt month a store may hold the player under: the retention window (oldest
    warm day to tomorrow) and the month of each day that is actually stored."""
    window = months_between(today - dt.timedelta(days=warm_retention_days), today + _FUTURE_MARGIN)
    return sorted(set(window) | {month_of(day) for day in stored_days})


async def erase_player(
    player_uuid: str,
    *,
    stores: PrivacyStores,
    pseudonymiser: Pseudonymiser,
    now: dt.datetime,
    profile_secret: str = DEVELOPMENT_PROFILE_SECRET,
) -> RequestResult:
    """Remove the player from every store and write the audit row."""
    request_id = uuid.uuid4()
    counts: dict[str, int] = {}
    root = _root(stores)
    conn = await asyncpg.connect(stores.postgres_dsn)
    try:
        await schema.migrate(conn)
        ids = await _player_ids(conn, root, player_uuid, stores, pseudonymiser, now)
        async with maintenance.exclusive(conn):
            hot = await erasure.erase_hot(
                conn, ids, request_id=request_id,
                profile_key=profile_key(player_uuid, profile_secret),
            )  # fmt: skip
            counts.update({f"hot:{table}": n for table, n in hot.items()})
            if root is not None:
                warm = await asyncio.to_thread(warm_erasure.erase_warm, root, ids)
                counts.update({f"warm:{dataset}": n for dataset, n in warm.items()})
            if stores.nats_url is not None:
                erased = await _find_stream(player_uuid, ids, stores, delete=True)
                counts.update({store: len(hits) for store, hits in erased.items()})
        await erasure.record_audit(
            conn, request_id=request_id, kind="erase", requested_at=now, rows_by_store=counts
        )
    finally:
        await conn.close()
    log.info("privacy erase %s: %d rows removed", request_id, sum(counts.values()))
    return RequestResult(request_id, "erase", counts)


async def access_player(
    player_uuid: str,
    *,
    stores: PrivacyStores,
    pseudonymiser: Pseudonymiser,
    now: dt.datetime,
    profile_secret: str = DEVELOPMENT_PROFILE_SECRET,
) -> RequestResult:
    """Everything stored about the player, per store, and the audit row."""
    request_id = uuid.uuid4()
    records: dict[str, list[dict[str, Any]]] = {}
    root = _root(stores)
    conn = await asyncpg.connect(stores.postgres_dsn)
    try:
        await schema.migrate(conn)
        ids = await _player_ids(conn, root, player_uuid, stores, pseudonymiser, now)
        hot = await erasure.access_hot(
            conn, ids, profile_key=profile_key(player_uuid, profile_secret)
        )
        records.update({f"hot:{table}": rows for table, rows in hot.items()})
        if root is not None:
            warm = await asyncio.to_thread(warm_erasure.access_warm, root, ids)
            records.update({f"warm:{dataset}": rows for dataset, rows in warm.items()})
        if stores.nats_url is not None:
            found = await _find_stream(player_uuid, ids, stores)
            records.update({k: [doc for _, doc in v] for k, v in found.items()})
        counts = {store: len(rows) for store, rows in records.items()}
        await erasure.record_audit(
            conn, request_id=request_id, kind="access", requested_at=now, rows_by_store=counts
        )
    finally:
        await conn.close()
    return RequestResult(request_id, "access", counts, records)


def _root(stores: PrivacyStores) -> ObjectRoot | None:
    if stores.warehouse_root is None:
        return None
    return open_root(stores.warehouse_root, endpoint=stores.s3_endpoint, region=stores.s3_region)


async def _player_ids(
    conn: asyncpg.Connection,
    root: ObjectRoot | None,
    player_uuid: str,
    stores: PrivacyStores,
    pseudonymiser: Pseudonymiser,
    now: dt.datetime,
) -> list[str]:
    # A day partition holds its own day only: no need to read it. The default partition
    # (late and far-future days) and the sessions are small.
    stored = set(await partitions.partition_days(conn))
    stored |= {
        r[0]
        for r in await conn.fetch(
            f"SELECT DISTINCT event_day FROM {schema.DEFAULT_PARTITION} UNION "
            f"SELECT DISTINCT (coalesce(started_at, ended_at) AT TIME ZONE 'UTC')::date "
            f"FROM {schema.SESSIONS_TABLE} WHERE coalesce(started_at, ended_at) IS NOT NULL"
        )
    }
    if root is not None:
        stored |= await asyncio.to_thread(_warm_days, root)
    months = request_months(
        today=now.astimezone(dt.UTC).date(),
        warm_retention_days=stores.warm_retention_days,
        stored_days=stored,
    )
    return sorted(set(pseudonymiser.player_ids(player_uuid, months=months).values()))


def _warm_days(root: ObjectRoot) -> set[dt.date]:
    days = set()
    for _, path in warm_erasure.player_files(root):
        for part in path.split("/"):
            if part.startswith("event_date="):
                try:
                    days.add(dt.date.fromisoformat(part.removeprefix("event_date=")))
                except ValueError:
                    continue
    return days


async def _find_stream(
    player_uuid: str, ids: list[str], stores: PrivacyStores, *, delete: bool = False
) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """The player's messages per subject; with `delete`, also removed from the stream."""
    assert stores.nats_url is not None
    match = stream_erasure.PlayerMatch(player_uuid=player_uuid, player_ids=ids)
    # A one-shot tool: a bounded connect, not the services' reconnect-forever.
    nc = await jetstream.connect_once(
        stores.nats_url, name="privacy-request", timeout_s=_NATS_TIMEOUT_S
    )
    try:
        js = nc.jetstream()
        found = {}
        subjects = [stores.dlq_subject]
        if stores.event_messages:
            subjects.append(stores.events_subject)
        for subject in subjects:
            hits = await stream_erasure.find_messages(
                js, stream=stores.stream, subject=subject, match=match
            )
            if delete:
                deleted = await stream_erasure.delete_messages(
                    js, stream=stores.stream, sequences=[seq for seq, _ in hits], match=match
                )
                hits = hits[:deleted]  # the count is what the audit reports
            found[f"nats:{subject}"] = hits
        return found
    finally:
        await nc.close()
