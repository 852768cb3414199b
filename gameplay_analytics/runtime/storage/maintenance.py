"""One maintenance pass over both stores: partitions ahead, warm export, both retentions.

Every replica runs the pass on a timer; a Postgres advisory lock lets one of them do it at a
time. The clock is a parameter (`now`), so tests and `demo` decide what day it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg

from gameplay_analytics.runtime.storage import erasure, partitions, profile, warm, warm_sessions

__all__ = [
    "OPEN_EXPORT_INTERVAL",
    "MaintenancePolicy",
    "MaintenanceReport",
    "exclusive",
    "prepare_partitions",
    "run_maintenance",
]

log = logging.getLogger(__name__)

_MAINTENANCE_LOCK: Final = 0x6761_6D65_6D61_696E  # "gamemain"

OPEN_EXPORT_INTERVAL: Final = dt.timedelta(hours=1)
"""The open day reaches the warm store at least this often (PROTOCOL.md §3: hourly)."""


@dataclasses.dataclass(frozen=True, slots=True)
class MaintenancePolicy:
    """The knobs of a pass; `AggregatorSettings` fills them from the environment."""

    partitions_ahead_days: int = 2
    hot_retention: dt.timedelta = dt.timedelta(hours=48)
    warm_retention_days: int = 183
    export_grace: dt.timedelta = dt.timedelta(hours=2)
    open_export_interval: dt.timedelta | None = OPEN_EXPORT_INTERVAL
    """How often an open day is re-exported (PROTOCOL.md §3); None: closed days only."""


@dataclasses.dataclass(frozen=True, slots=True)
class MaintenanceReport:
    created: list[dt.date]
    exported: list[warm.ExportedDay]
    retention: partitions.RetentionReport
    warm_deleted: list[dt.date]
    tombstones_pruned: int = 0
    profiles_expired: int = 0


@contextlib.asynccontextmanager
async def exclusive(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Hold the maintenance lock on `conn`, waiting for a running pass to end: a privacy
    erasure rewrites warm days under it, so no export writes a day from an older read."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MAINTENANCE_LOCK)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MAINTENANCE_LOCK)


async def prepare_partitions(
    pool: asyncpg.Pool, *, now: dt.datetime, policy: MaintenancePolicy
) -> list[dt.date]:
    """Only the partitions ahead, waiting for the lock: what a replica needs before writing."""
    async with pool.acquire() as conn, exclusive(conn):
        return await partitions.ensure_partitions(
            conn, today=now.astimezone(dt.UTC).date(), ahead_days=policy.partitions_ahead_days
        )


async def run_maintenance(
    pool: asyncpg.Pool,
    *,
    now: dt.datetime,
    policy: MaintenancePolicy,
    store: warm.WarmStore | None,
    wait: bool = False,
) -> MaintenanceReport | None:
    """Run one pass; None when another replica holds the maintenance lock (and not `wait`).

    The export (events, then sessions; closed days and the open ones) runs before the hot
    retention, and the retention drops only exported days and sessions, so nothing leaves
    Postgres before it is in the warm store. Without a warm store the
    hot retention simply drops expired days.
    """
    async with pool.acquire() as lock_conn:
        if wait:
            await lock_conn.execute("SELECT pg_advisory_lock($1)", _MAINTENANCE_LOCK)
        elif not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _MAINTENANCE_LOCK):
            return None
        try:
            today = now.astimezone(dt.UTC).date()
            created = await partitions.ensure_partitions(
                lock_conn, today=today, ahead_days=policy.partitions_ahead_days
            )
            exported: list[warm.ExportedDay] = []
            warm_deleted: list[dt.date] = []
            if store is not None:
                schedule: dict[str, Any] = dict(
                    now=now, grace=policy.export_grace,
                    retention_days=policy.warm_retention_days,
                    open_interval=policy.open_export_interval,
                )  # fmt: skip
                exported = await warm.export_closed_days(pool, store, **schedule)
                exported += await warm_sessions.export_session_days(pool, store, **schedule)
            retention = await partitions.apply_hot_retention(
                lock_conn,
                now=now,
                retention=policy.hot_retention,
                require_export=store is not None,
                warm_cutoff=warm.warm_cutoff(now, policy.warm_retention_days),
            )
            if store is not None:
                warm_deleted = await warm.apply_warm_retention(
                    pool, store, now=now, retention_days=policy.warm_retention_days
                )
            pruned = await erasure.prune_tombstones(
                lock_conn, now=now, retention_days=policy.warm_retention_days
            )
            expired = await profile.expire_profiles(lock_conn, today=today)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", _MAINTENANCE_LOCK)
    return MaintenanceReport(created, exported, retention, warm_deleted, pruned, expired)
