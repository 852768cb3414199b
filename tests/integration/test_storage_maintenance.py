"""Partitions, the warm export and both retentions, with a clock the test controls."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gameplay_analytics.insights import warehouse
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import hot, partitions, warm

D = dt.date(2025, 10, 1)
POLICY = storage.MaintenancePolicy(
    partitions_ahead_days=2,
    hot_retention=dt.timedelta(hours=48),
    warm_retention_days=183,
    export_grace=dt.timedelta(hours=2),
    open_export_interval=None,  # closed days only here; tests/integration/test_warm_freshness.py
)
PLAYER = "a" * 64
GUID = uuid.UUID("9b2f0000-0000-4000-8000-000000000001")


def at(day: dt.date, hour: float = 0.0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def row(seq: int, day: dt.date, **over: Any) -> hot.EventRow:
    values: dict[str, Any] = dict(
        analytics_player_id=PLAYER, client_guid=GUID, seq=seq, event_name="xp_gain",
        category="progression", event_ts=at(day, 10) + dt.timedelta(milliseconds=seq),
        event_day=day, received_at=at(day, 10), session_id="s", schema_version="1.0.0",
        sample_rate=0.3, build="b", platform="win64", shard=None, region="eu", country="GB",
        latency_bucket="lt50", props='{"amount": 1, "source": "q"}', geo_region=None,
        envelope_id=seq, stream_seq=seq, source="client",
    )  # fmt: skip
    values.update(over)
    return tuple(values[c] for c in storage.EVENT_COLUMNS)


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await storage.migrate(conn)
        await storage.migrate(conn)  # idempotent
    yield pool
    await pool.close()


async def write(pool: asyncpg.Pool, rows: list[hot.EventRow]) -> hot.WriteResult:
    async with pool.acquire() as conn:
        return await hot.write_batch(conn, rows)


async def days_in(pool: asyncpg.Pool, table: str) -> list[tuple[dt.date, int]]:
    async with pool.acquire() as conn:
        found = await conn.fetch(f"SELECT event_day, count(*) FROM {table} GROUP BY 1 ORDER BY 1")
    return [(r[0], r[1]) for r in found]


async def test_partitions_ahead_default_partition_and_moves(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await storage.ensure_partitions(conn, today=D, ahead_days=2) == [
            D,
            D + dt.timedelta(days=1),
            D + dt.timedelta(days=2),
        ]
        assert await storage.ensure_partitions(conn, today=D, ahead_days=2) == []
    future, past = D + dt.timedelta(days=5), D - dt.timedelta(days=9)
    # Late and far-future events land in the default partition instead of failing the batch.
    result = await write(pool, [row(1, D), row(2, future), row(3, past), row(1, D)])
    assert (result.inserted, result.duplicates) == (3, 1)
    assert await days_in(pool, "analytics_events_default") == [(past, 1), (future, 1)]
    # Dedup holds in the default partition too.
    assert (await write(pool, [row(2, future), row(4, future)])).inserted == 1
    async with pool.acquire() as conn:
        created = await storage.ensure_partitions(conn, today=future, ahead_days=0)
    assert created == [future]
    assert await days_in(pool, "analytics_events_default") == [(past, 1)]
    assert await days_in(pool, partitions.partition_name(future)) == [(future, 2)]
    assert (await write(pool, [row(2, future)])).duplicates == 1


async def test_export_and_both_retentions(pool: asyncpg.Pool, tmp_path: Path) -> None:
    store = warm.WarmStore(str(tmp_path / "warehouse"))
    prev = D - dt.timedelta(days=1)
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, today=D, ahead_days=2)
    await write(pool, [row(i, D) for i in range(100)] + [row(1000 + i, prev) for i in range(5)])

    # D is still open at D+1 01:00 (grace 2 h); `prev` has no partition: merged from default.
    report = await storage.run_maintenance(pool, now=at(D, 25), policy=POLICY, store=store)
    assert report is not None
    assert [(e.day, e.rows, e.mode) for e in report.exported] == [(prev, 5, "merge")]
    assert await days_in(pool, "analytics_events_default") == []

    report = await storage.run_maintenance(pool, now=at(D, 26.5), policy=POLICY, store=store)
    assert report is not None
    assert [(e.day, e.rows, e.mode) for e in report.exported] == [(D, 100, "full")]
    again = await storage.run_maintenance(pool, now=at(D, 27), policy=POLICY, store=store)
    assert again is not None and again.exported == []  # recorded: not exported twice

    # A late arrival changes the day: it is exported again, as a whole, replacing the file.
    await write(pool, [row(500, D)])
    report = await storage.run_maintenance(pool, now=at(D, 28), policy=POLICY, store=store)
    assert report is not None and [(e.day, e.rows) for e in report.exported] == [(D, 101)]
    assert warehouse.query(store.root, "SELECT count(*) FROM analytics_events WHERE "
                           "event_day = ?", [D]) == [(101,)]  # fmt: skip

    # Hot retention: D ended at D+1 00:00, so at D+3 00:00 it is 48 h old. A late row that
    # arrives just before the drop keeps the partition until it has been exported.
    await write(pool, [row(501, D)])
    report = await storage.run_maintenance(pool, now=at(D, 72), policy=POLICY, store=store)
    assert report is not None
    assert [(e.day, e.rows) for e in report.exported] == [(D, 102)]
    assert D in report.retention.dropped_days
    async with pool.acquire() as conn:
        assert D not in await storage.partition_days(conn)
        # Late again, after the drop: the row goes to the default partition and is merged.
        await hot.write_batch(conn, [row(502, D), row(3, D)])
    report = await storage.run_maintenance(pool, now=at(D, 73), policy=POLICY, store=store)
    assert report is not None
    assert [(e.day, e.rows, e.mode) for e in report.exported] == [(D, 103, "merge")]
    rows = warehouse.query(store.root, "SELECT seq FROM analytics_events WHERE event_day = ?", [D])
    assert sorted(r[0] for r in rows) == [*range(100), 500, 501, 502]

    # Retention keeps an expired, unexported day.
    kept = D + dt.timedelta(days=3)
    await write(pool, [row(7, kept)])
    async with pool.acquire() as conn:
        retention = await storage.apply_hot_retention(
            conn, now=at(kept, 72), retention=POLICY.hot_retention, require_export=True,
            warm_cutoff=None,
        )  # fmt: skip
    assert retention.kept_unexported == [kept]

    # Warm retention: 183 days later only the recent days stay.
    assert store.days() == [prev, D]
    late = at(D + dt.timedelta(days=183), 12)
    report = await storage.run_maintenance(pool, now=late, policy=POLICY, store=store)
    assert report is not None and report.warm_deleted == [prev]
    assert store.days() == [D, kept]


async def test_maintenance_lock_lets_one_replica_run(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1)", 0x6761_6D65_6D61_696E)
        try:
            report = await storage.run_maintenance(pool, now=at(D), policy=POLICY, store=None)
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", 0x6761_6D65_6D61_696E)
    assert report is None


async def test_without_warm_store_retention_drops_expired_days(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, today=D, ahead_days=0)
    await write(pool, [row(1, D), row(2, D - dt.timedelta(days=4))])
    report = await storage.run_maintenance(pool, now=at(D, 72), policy=POLICY, store=None)
    assert report is not None and report.retention.dropped_days == [D]
    assert report.retention.default_rows_deleted == 1
