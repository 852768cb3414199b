"""Hot retention is exactly 48 h of event time: the day the horizon falls in loses its older
rows each pass (once exported), and a later export of that day merges instead of replacing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg

from gameplay_analytics.insights import warehouse
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import partitions, warm
from tests.integration.test_storage_maintenance import POLICY, at, pool, row, write

__all__ = ["pool"]

D = dt.date(2025, 10, 1)


async def _hot(pool: asyncpg.Pool) -> list[int]:
    async with pool.acquire() as conn:
        return [r[0] for r in await conn.fetch("SELECT seq FROM analytics_events ORDER BY seq")]


def _warm(store: warm.WarmStore) -> list[int]:
    found = warehouse.query(store.root, "SELECT seq FROM analytics_events ORDER BY seq")
    return [r[0] for r in found]


async def test_rows_leave_the_hot_store_48_hours_after_their_event_time(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = warm.WarmStore(str(tmp_path / "warehouse"))
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, today=D, ahead_days=0)
    await write(pool, [row(h, D, event_ts=at(D, h)) for h in (2, 10, 20)])
    first = await storage.run_maintenance(pool, now=at(D, 27), policy=POLICY, store=store)
    assert first is not None and [e.mode for e in first.exported] == ["full"]

    # D+2 11:00: the horizon is D 11:00, so the 02:00 and 10:00 rows go, the 20:00 one stays.
    report = await storage.run_maintenance(pool, now=at(D, 59), policy=POLICY, store=store)
    assert report is not None and report.retention.trimmed_rows == 2
    assert await _hot(pool) == [20]
    assert _warm(store) == [2, 10, 20]

    # A late row of D: exported by merging into the file, which keeps the trimmed rows.
    await write(pool, [row(21, D, event_ts=at(D, 21))])
    report = await storage.run_maintenance(pool, now=at(D, 60), policy=POLICY, store=store)
    assert report is not None
    assert [(e.day, e.rows, e.mode) for e in report.exported] == [(D, 2, partitions.TRIMMED)]
    assert _warm(store) == [2, 10, 20, 21]
    again = await storage.run_maintenance(pool, now=at(D, 60.5), policy=POLICY, store=store)
    assert again is not None and again.exported == []  # the ledger matches: nothing to do

    # At D+3 00:00 the whole day is past the horizon: dropped, the warm file untouched.
    report = await storage.run_maintenance(pool, now=at(D, 72), policy=POLICY, store=store)
    assert report is not None and report.retention.dropped_days == [D]
    assert await _hot(pool) == [] and _warm(store) == [2, 10, 20, 21]


async def test_an_unexported_day_is_not_trimmed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, today=D, ahead_days=0)
        await storage.hot.write_batch(conn, [row(h, D, event_ts=at(D, h)) for h in (2, 20)])
        kept = await storage.apply_hot_retention(
            conn, now=at(D, 59), retention=POLICY.hot_retention, require_export=True
        )
        assert kept.trimmed_rows == 0
        # Without a warm store the hot store simply keeps 48 h.
        gone = await storage.apply_hot_retention(
            conn, now=at(D, 59), retention=POLICY.hot_retention, require_export=False
        )
    assert gone.trimmed_rows == 1 and await _hot(pool) == [20]
