"""Bulk writes into the Postgres hot store: events exactly once, sessions upserted.

The fast path COPies a batch straight into `analytics_events` (PostgreSQL routes rows to
their day partitions); the primary key (player, client_guid, seq, event_day) makes a batch
holding an already-stored event fail as a whole, and only such a batch takes the slow path:
COPY into a temporary staging table, then `INSERT … ON CONFLICT DO NOTHING`. Redeliveries are
rare, so almost every batch costs one COPY, of rows the aggregator encoded as it built them
(`copy_binary`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from gameplay_analytics.runtime.storage import copy_binary, erasure, profile
from gameplay_analytics.runtime.storage.schema import EVENT_COLUMNS, EVENTS_TABLE, SESSIONS_TABLE

__all__ = ["EventRow", "SessionUpdate", "WriteResult", "write_batch"]

EventRow = tuple[Any, ...]
"""One `analytics_events` row, values in `schema.EVENT_COLUMNS` order."""

_STAGING = "analytics_events_staging"


@dataclasses.dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows inserted and duplicates suppressed (already stored, or repeated in the batch)."""

    inserted: int
    duplicates: int
    slow_path: bool


@dataclasses.dataclass(slots=True)
class SessionUpdate:
    """What lifecycle events say about one session; merged per batch, upserted once."""

    session_id: str
    analytics_player_id: str
    client_guid: uuid.UUID
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str | None = None
    build: str | None = None
    platform: str | None = None
    shard: str | None = None
    region: str | None = None
    country: str | None = None
    geo_region: str | None = None

    def merge(self, other: SessionUpdate) -> None:
        """Fold a later update of the same session in: earliest start, latest end."""
        if other.started_at is not None and (
            self.started_at is None or other.started_at < self.started_at
        ):
            self.started_at = other.started_at
        if other.ended_at is not None and (
            self.ended_at is None or other.ended_at >= self.ended_at
        ):
            self.ended_at, self.end_reason = other.ended_at, other.end_reason
        for name in ("build", "platform", "shard", "region", "country", "geo_region"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))


_SESSION_COLUMNS = (
    ("session_id", "text"),
    ("analytics_player_id", "text"),
    ("client_guid", "uuid"),
    ("started_at", "timestamptz"),
    ("ended_at", "timestamptz"),
    ("end_reason", "text"),
    ("build", "text"),
    ("platform", "text"),
    ("shard", "text"),
    ("region", "text"),
    ("country", "text"),
    ("geo_region", "text"),
)
_KEEP_FIRST = ("build", "platform", "shard", "region", "country", "geo_region")
_ARRAYS = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_SESSION_COLUMNS, 1))
_UPSERT_SESSIONS = (
    f"INSERT INTO {SESSIONS_TABLE} AS s ({', '.join(c for c, _ in _SESSION_COLUMNS)}) "
    f"SELECT * FROM unnest({_ARRAYS}) "
    "ON CONFLICT (session_id) DO UPDATE SET "
    "started_at = LEAST(s.started_at, EXCLUDED.started_at), "
    "end_reason = CASE WHEN EXCLUDED.ended_at IS NOT NULL "
    "AND (s.ended_at IS NULL OR EXCLUDED.ended_at >= s.ended_at) "
    "THEN EXCLUDED.end_reason ELSE s.end_reason END, "
    "ended_at = GREATEST(s.ended_at, EXCLUDED.ended_at), "
    + ", ".join(f"{c} = COALESCE(s.{c}, EXCLUDED.{c})" for c in _KEEP_FIRST)
    + ", updated_at = now()"
)


async def write_batch(
    conn: asyncpg.Connection,
    rows: Sequence[EventRow],
    sessions: Iterable[SessionUpdate] = (),
    profiles: Sequence[profile.ProfileUpdate] = (),
    *,
    encoded: copy_binary.Encoded | None = None,
) -> WriteResult:
    """Store a batch in one transaction; a raised error means nothing of it was stored.

    `encoded`: the same rows, in order, already in binary COPY form (`copy_binary`), sent
    as they are unless some of the rows are left out (erased players); `rows` is then only
    read if Postgres finds a duplicate or a player was erased (it may build rows lazily).
    The players' onboarding profiles (`profile.upsert_profiles`) commit with their events.

    A key repeated inside the batch also fails the COPY, so the slow path covers both kinds
    of duplicate without a per-row check in Python on the fast path. Rows, sessions and the
    profile of an erased player (`erasure.without_erased`) are dropped, counted nowhere.
    """
    slow = False
    async with conn.transaction():
        given = rows
        rows, kept, profiles = await erasure.without_erased(  # first: see there
            conn, rows, list(sessions), profiles,
            player_ids=encoded.player_ids if encoded is not None else None,
        )  # fmt: skip
        inserted = len(rows)
        if rows:
            try:
                async with conn.transaction():  # a savepoint: the fast path may fail alone
                    if encoded is not None and rows is given:  # nothing left out
                        await conn.copy_to_table(
                            EVENTS_TABLE, source=copy_binary.stream(encoded.chunks),
                            columns=EVENT_COLUMNS, format="binary",
                        )  # fmt: skip
                    else:
                        await conn.copy_records_to_table(
                            EVENTS_TABLE, records=rows, columns=EVENT_COLUMNS
                        )
            except asyncpg.UniqueViolationError:
                slow = True
                inserted = await _insert_new_only(conn, rows)
        updates = sorted(kept, key=lambda s: s.session_id)  # fixed lock order
        if updates:
            await conn.execute(
                _UPSERT_SESSIONS,
                *([getattr(s, c) for s in updates] for c, _ in _SESSION_COLUMNS),
            )
        await profile.upsert_profiles(conn, profiles)
    return WriteResult(inserted, len(rows) - inserted, slow)


async def _insert_new_only(conn: asyncpg.Connection, rows: Sequence[EventRow]) -> int:
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
        f"(LIKE {EVENTS_TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(_STAGING, records=rows, columns=EVENT_COLUMNS)
    status = await conn.execute(
        f"INSERT INTO {EVENTS_TABLE} SELECT * FROM {_STAGING} ON CONFLICT DO NOTHING"
    )
    return int(status.rsplit(" ", 1)[-1])
