"""Sessions in the warm store: `gameplay_sessions/event_date=YYYY-MM-DD/data.parquet`, one row
per session, in the day the session started (PROTOCOL.md §3).

A session changes after its day was exported (it ends later, a late `session_start` moves
its start earlier), and the hot store forgets sessions 48 h after their last lifecycle
instant. So a day's file is always *merged*, never replaced from Postgres alone: the hot rows
of the day win over the file's rows with the same `session_id`, the file's other rows stay
(the sessions the hot store has already dropped), and a session that now starts on another
day leaves this one. The result is each session exactly once, however often a day is
exported. Whether a day changed is a digest of its hot rows (including `updated_at`, which
every upsert bumps), taken in the same snapshot as the rows it describes, so no concurrent
write is missed. A session whose `session_start` never arrived has no start day and is not
exported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Final

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc

from gameplay_analytics.runtime.storage import partitions, warm_schedule
from gameplay_analytics.runtime.storage.schema import SESSION_EXPORTS_TABLE, SESSIONS_TABLE
from gameplay_analytics.runtime.storage.warm import (
    SESSIONS_DATASET,
    ExportedDay,
    WarmStore,
    warm_cutoff,
)

__all__ = ["SESSIONS_SCHEMA", "export_session_days", "export_sessions_day", "merge_sessions"]

log = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")

SESSIONS_SCHEMA: Final = pa.schema(
    [
        ("session_id", pa.string()),
        ("analytics_player_id", pa.string()),
        ("client_guid", pa.string()),
        ("started_at", _TS),
        ("ended_at", _TS),
        ("end_reason", pa.string()),
        ("build", pa.string()),
        ("platform", pa.string()),
        ("shard", pa.string()),
        ("region", pa.string()),
        ("country", pa.string()),
        ("geo_region", pa.string()),
    ]
)
"""The Parquet columns: PROTOCOL.md §3's `analytics_sessions`, then `geo_region`."""

_START_DAY: Final = "(started_at AT TIME ZONE 'UTC')::date"
# A row count and an order-free sum of 64-bit row hashes: O(1) memory per day, unlike an
# aggregate of the rows' text, and any upsert (it bumps `updated_at`) changes it.
_DIGEST: Final = "count(*)::text || ':' || coalesce(sum(hashtextextended(s::text, 0)), 0)::text"
_COLUMNS: Final = ", ".join(
    f"{f.name}::text AS {f.name}" if f.name == "client_guid" else f.name for f in SESSIONS_SCHEMA
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Ledger:
    digest: str
    exported_at: dt.datetime


def merge_sessions(
    existing: pa.Table | None, hot: pa.Table, *, leaving: Sequence[str] = ()
) -> pa.Table:
    """The day's sessions after an export: `hot` (this day's hot rows, which win), then the
    rows of `existing` that are neither in `hot` nor `leaving` (moved to another day). Pure."""
    if existing is None or existing.num_rows == 0:
        return hot
    drop = pa.array([*hot["session_id"].to_pylist(), *leaving], pa.string())
    kept = existing.filter(pc.invert(pc.is_in(existing["session_id"], value_set=drop)))
    return pa.concat_tables([hot, kept.select(SESSIONS_SCHEMA.names).cast(SESSIONS_SCHEMA)])


async def export_sessions_day(
    pool: asyncpg.Pool, store: WarmStore, day: dt.date, *, at: dt.datetime | None = None
) -> ExportedDay | None:
    """Merge the hot sessions that started on `day` into its file; None when neither the
    hot store nor the file holds any. `at` is the export's time in the ledger."""
    existing = await asyncio.to_thread(store.read_day, day, SESSIONS_DATASET, SESSIONS_SCHEMA)
    start, end = partitions.day_end(day) - dt.timedelta(days=1), partitions.day_end(day)
    known = existing["session_id"].to_pylist() if existing is not None else []
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                f"SELECT {_COLUMNS}, updated_at FROM {SESSIONS_TABLE} "
                "WHERE started_at >= $1 AND started_at < $2 ORDER BY session_id",
                start, end,
            )  # fmt: skip
            digest = await conn.fetchval(
                f"SELECT {_DIGEST} FROM {SESSIONS_TABLE} s "
                "WHERE started_at >= $1 AND started_at < $2",
                start, end,
            )  # fmt: skip
            moved = await conn.fetch(
                f"SELECT session_id FROM {SESSIONS_TABLE} WHERE session_id = ANY($1) "
                "AND (started_at < $2 OR started_at >= $3)",
                known, start, end,
            )  # fmt: skip
        leaving = [r["session_id"] for r in moved]
        if not rows and existing is None:
            return None
        hot = pa.Table.from_pylist(
            [{f: r[f] for f in SESSIONS_SCHEMA.names} for r in rows], schema=SESSIONS_SCHEMA
        )
        merged = merge_sessions(existing, hot, leaving=leaving)
        count, size = await asyncio.to_thread(
            store.write_day, day, iter(merged.to_batches()),
            dataset=SESSIONS_DATASET, schema=SESSIONS_SCHEMA,
        )  # fmt: skip
        through = max((r["updated_at"] for r in rows), default=None)
        path = store.day_path(day, SESSIONS_DATASET)
        await conn.execute(
            f"INSERT INTO {SESSION_EXPORTS_TABLE} "
            "(start_day, rows, bytes, path, digest, exported_through, exported_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now())) "
            "ON CONFLICT (start_day) DO UPDATE SET rows = $2, bytes = $3, path = $4, "
            "digest = $5, exported_through = greatest(EXCLUDED.exported_through, "
            f"{SESSION_EXPORTS_TABLE}.exported_through), exported_at = coalesce($7, now())",
            day, count, size, path, digest or "", through, at,
        )  # fmt: skip
    log.info("exported sessions of %s: %d rows to %s", day, count, path)
    return ExportedDay(day, count, size, path, "sessions")


async def export_session_days(
    pool: asyncpg.Pool,
    store: WarmStore,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    retention_days: int,
    open_interval: dt.timedelta | None,
) -> list[ExportedDay]:
    """Export the start days whose hot sessions changed since their last export
    (`warm_schedule.due_days`: closed days at once, open ones every `open_interval`); the
    knobs are `MaintenancePolicy`'s."""
    oldest = partitions.day_end(warm_cutoff(now, retention_days)) - dt.timedelta(days=1)
    async with pool.acquire() as conn:
        hot = {
            r["day"]: r["digest"]
            for r in await conn.fetch(
                f"SELECT {_START_DAY} AS day, {_DIGEST} AS digest FROM {SESSIONS_TABLE} s "
                "WHERE started_at >= $1 GROUP BY 1",
                oldest,
            )
        }
        ledger = {
            r["start_day"]: _Ledger(r["digest"], r["exported_at"])
            for r in await conn.fetch(
                f"SELECT start_day, digest, exported_at FROM {SESSION_EXPORTS_TABLE}"
            )
        }
    changed = {
        day: day not in ledger or ledger[day].digest != digest for day, digest in hot.items()
    }
    due = warm_schedule.due_days(
        changed,
        {day: entry.exported_at for day, entry in ledger.items()},
        now=now,
        grace=grace,
        open_interval=open_interval,
    )
    exported = []
    for day in due:
        done = await export_sessions_day(pool, store, day, at=now)
        if done is not None:
            exported.append(done)
    return exported
