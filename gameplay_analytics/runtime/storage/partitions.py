"""Daily partitions of `analytics_events`: created ahead, trimmed and dropped by retention.

The hot store keeps exactly the retention (48 h) of event time: a partition is dropped once
its whole day is older, and the day the horizon falls in loses its older rows each pass.

Policy for events whose day has no partition (late beyond the hot window, or a client clock
far in the future): PostgreSQL routes them to the DEFAULT partition, so a batch never fails
for its timestamps and nothing is lost. When the day's own partition is created later, its
rows are moved out of the default partition in the same transaction (ATTACH refuses a range
the default still holds). Rows of a closed day that stay in the default are exported to the
warm store by `warm.export_closed_days`, which merges them into that day's Parquet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re

import asyncpg

from gameplay_analytics.runtime.storage.schema import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    EXPORTS_TABLE,
    SESSION_EXPORTS_TABLE,
    SESSIONS_TABLE,
)

__all__ = [
    "TRIMMED",
    "RetentionReport",
    "apply_hot_retention",
    "day_end",
    "ensure_partitions",
    "partition_days",
    "partition_name",
]

log = logging.getLogger(__name__)

TRIMMED = "trimmed"
"""The export ledger's mode of a day the hot retention has cut the head of."""

_NAME = re.compile(rf"^{EVENTS_TABLE}_p(\d{{4}})(\d{{2}})(\d{{2}})$")


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one hot-retention pass removed, and which expired days it had to keep."""

    dropped_days: list[dt.date]
    kept_unexported: list[dt.date]
    default_rows_deleted: int
    sessions_deleted: int
    trimmed_rows: int = 0


def partition_name(day: dt.date) -> str:
    return f"{EVENTS_TABLE}_p{day:%Y%m%d}"


def day_end(day: dt.date) -> dt.datetime:
    """The first instant after `day`, UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


async def partition_days(conn: asyncpg.Connection) -> list[dt.date]:
    """The days that have their own partition, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass",
        EVENTS_TABLE,
    )
    days = []
    for row in rows:
        match = _NAME.match(row["relname"])
        if match:
            days.append(dt.date(*(int(g) for g in match.groups())))
    return sorted(days)


async def ensure_partitions(
    conn: asyncpg.Connection, *, today: dt.date, ahead_days: int
) -> list[dt.date]:
    """Create the partitions of `today` … `today + ahead_days` that are missing.

    Returns the days created. Each creation moves that day's rows out of the default
    partition first; callers serialise maintenance (an advisory lock) across replicas.
    """
    existing = set(await partition_days(conn))
    created = []
    for offset in range(ahead_days + 1):
        day = today + dt.timedelta(days=offset)
        if day in existing:
            continue
        await _create_partition(conn, day)
        created.append(day)
    return created


async def _create_partition(conn: asyncpg.Connection, day: dt.date) -> None:
    name = partition_name(day)
    start, end = day.isoformat(), (day + dt.timedelta(days=1)).isoformat()
    async with conn.transaction():
        await conn.execute(
            f"CREATE TABLE {name} (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        moved = await conn.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE event_day = $1 RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            day,
        )
        await conn.execute(
            f"ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    count = int(moved.rsplit(" ", 1)[-1])
    log.info("created partition %s (%d rows moved from the default partition)", name, count)


async def apply_hot_retention(
    conn: asyncpg.Connection,
    *,
    now: dt.datetime,
    retention: dt.timedelta,
    require_export: bool,
    warm_cutoff: dt.date | None = None,
) -> RetentionReport:
    """Drop the partitions whose whole day ended more than `retention` before `now`.

    With `require_export` (a warm store is configured) a partition is dropped only when the
    export ledger holds exactly as many rows for its day as the partition does, checked under
    an exclusive lock so that no late row can slip in between: a day with unexported rows is
    kept and reported, and the next export pass re-exports it. Default-partition rows are
    deleted here only once they are older than the warm retention too (`warm_cutoff`), or,
    without a warm store, older than the hot retention; otherwise the export takes them.
    Sessions whose last lifecycle instant is older than the retention are deleted as well
    (with a warm store, once exported: `warm_sessions`).
    """
    horizon = now - retention
    dropped: list[dt.date] = []
    kept: list[dt.date] = []
    trimmed = 0
    for day in await partition_days(conn):
        if day_end(day) - dt.timedelta(days=1) < horizon < day_end(day):
            trimmed += await _trim(conn, day, horizon=horizon, require_export=require_export)
        if day_end(day) > horizon:
            continue
        name = partition_name(day)
        async with conn.transaction():
            if require_export:
                await conn.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                count = await conn.fetchval(f"SELECT count(*) FROM {name}")
                exported = await conn.fetchval(
                    f"SELECT rows FROM {EXPORTS_TABLE} WHERE event_day = $1", day
                )
                if count and exported != count:
                    kept.append(day)
                    continue
            await conn.execute(f"DROP TABLE {name}")
        dropped.append(day)
    if kept:
        log.warning("hot retention kept unexported days %s", ", ".join(map(str, kept)))
    cutoff = warm_cutoff if require_export else horizon.date()
    default_deleted = 0
    if cutoff is not None:
        status = await conn.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE event_day < $1", cutoff)
        default_deleted = int(status.rsplit(" ", 1)[-1])
    # With a warm store, a session leaves only once its start day's export holds its latest
    # version (or it is older than the warm retention, or has no start day to be exported in).
    status = await conn.execute(
        f"DELETE FROM {SESSIONS_TABLE} s WHERE GREATEST(started_at, ended_at) < $1 AND "
        "(NOT $2 OR started_at IS NULL OR started_at < $3 OR EXISTS ("
        f"SELECT 1 FROM {SESSION_EXPORTS_TABLE} x WHERE "
        "x.start_day = (s.started_at AT TIME ZONE 'UTC')::date "
        "AND x.exported_through >= s.updated_at))",
        horizon, require_export, day_end(warm_cutoff or dt.date.min) - dt.timedelta(days=1),
    )  # fmt: skip
    return RetentionReport(
        dropped, kept, default_deleted, int(status.rsplit(" ", 1)[-1]), trimmed_rows=trimmed
    )


async def _trim(
    conn: asyncpg.Connection, day: dt.date, *, horizon: dt.datetime, require_export: bool
) -> int:
    """Delete the rows of the day the horizon falls in that are older than it: the hot
    store keeps exactly `retention` of event time, not up to a day more.

    With a warm store, only a day wholly exported is trimmed (the ledger holds as many rows as
    the partition), under the same exclusive lock as a drop; the ledger then records the rows
    left and the mode `trimmed`, which makes any later export of the day merge into its file
    instead of replacing it with what is left in Postgres."""
    name = partition_name(day)
    async with conn.transaction():
        if require_export:
            await conn.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
            count = await conn.fetchval(f"SELECT count(*) FROM {name}")
            exported = await conn.fetchval(
                f"SELECT rows FROM {EXPORTS_TABLE} WHERE event_day = $1", day
            )
            if not count or exported != count:
                return 0
        status = await conn.execute(f"DELETE FROM {name} WHERE event_ts < $1", horizon)
        deleted = int(status.rsplit(" ", 1)[-1])
        if require_export and deleted:
            await conn.execute(
                f"UPDATE {EXPORTS_TABLE} SET rows = rows - $2, mode = $3 WHERE event_day = $1",
                day, deleted, TRIMMED,
            )  # fmt: skip
    return deleted
