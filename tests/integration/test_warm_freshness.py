"""Warm-store freshness and sessions (PROTOCOL.md §3) on a real Postgres, with a clock the
test moves: the open day is exported at most an interval behind, a late event lands exactly
once however its day was written before, and sessions reach `gameplay_sessions/` once each,
read back with DuckDB and pyarrow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import asyncpg
import pyarrow.parquet as pq

from gameplay_analytics.insights import warehouse
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import hot, warm, warm_erasure, warm_sessions
from tests.integration.test_storage_maintenance import PLAYER, D, at, pool, row, write

__all__ = ["pool"]

HOURLY = storage.MaintenancePolicy(open_export_interval=dt.timedelta(hours=1))
PREV = D - dt.timedelta(days=1)


async def maintain(pool: asyncpg.Pool, store: warm.WarmStore, now: dt.datetime) -> list[tuple]:
    report = await storage.run_maintenance(pool, now=now, policy=HOURLY, store=store)
    assert report is not None
    return [(e.day, e.rows, e.mode) for e in report.exported]


def warm_counts(store: warm.WarmStore) -> tuple[int, int]:
    found = warehouse.query(
        store.root, "SELECT count(*), count(DISTINCT seq) FROM analytics_events WHERE "
        "event_day = ?", [D],
    )  # fmt: skip
    return found[0]


async def test_the_open_day_is_fresh_and_a_late_event_lands_once(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = warm.WarmStore(str(tmp_path / "warehouse"))
    async with pool.acquire() as conn:
        await storage.ensure_partitions(conn, today=D, ahead_days=1)
    await write(pool, [row(i, D) for i in range(10)])

    # D is open at 10:00: exported at once (never was), then again only an hour later.
    assert await maintain(pool, store, at(D, 10)) == [(D, 10, "full")]
    await write(pool, [row(i, D) for i in range(10, 15)])
    assert await maintain(pool, store, at(D, 10.5)) == []
    assert warm_counts(store) == (10, 10)
    assert await maintain(pool, store, at(D, 11)) == [(D, 15, "full")]
    assert warm_counts(store) == (15, 15)
    assert await maintain(pool, store, at(D, 12.5)) == []  # unchanged: nothing written

    # Closed (grace 2 h): a late event re-exports the day at the next pass, replacing it.
    await write(pool, [row(100, D), row(3, D)])  # seq 3 again: the hot store's dedup
    assert await maintain(pool, store, at(D, 26.5)) == [(D, 16, "full")]
    assert warm_counts(store) == (16, 16)

    # After the day's partition is dropped (48 h), a late event is merged into the file.
    assert await maintain(pool, store, at(D, 72)) == []
    async with pool.acquire() as conn:
        assert D not in await storage.partition_days(conn)
    await write(pool, [row(101, D), row(100, D)])  # 100 is in the file already
    assert await maintain(pool, store, at(D, 73)) == [(D, 17, "merge")]
    await store.export_day(pool, D)  # nothing left in Postgres: a no-op
    assert warm_counts(store) == (17, 17)


async def test_an_open_day_without_its_partition_waits(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """Its rows sit in the default partition; exporting them (a merge) would take them out of
    the hot store while the day is still read there, so it waits until the day closes."""
    store = warm.WarmStore(str(tmp_path / "warehouse"))
    await write(pool, [row(1, D), row(2, D)])
    hourly = dict(grace=HOURLY.export_grace, open_interval=HOURLY.open_export_interval)
    assert await warm.export_closed_days(pool, store, now=at(D, 10), **hourly) == []
    done = await warm.export_closed_days(pool, store, now=at(D, 26.5), **hourly)
    assert [(e.day, e.rows, e.mode) for e in done] == [(D, 2, "merge")]


def session(sid: str, **over: object) -> hot.SessionUpdate:
    base = hot.SessionUpdate(
        session_id=sid, analytics_player_id=PLAYER, client_guid=uuid.UUID(int=7), build="b",
        platform="win64", region="eu", country="GB",
    )  # fmt: skip
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


async def upsert(pool: asyncpg.Pool, *sessions: hot.SessionUpdate) -> None:
    async with pool.acquire() as conn:
        await hot.write_batch(conn, [], sessions)


def warm_sessions_rows(store: warm.WarmStore) -> dict[str, tuple]:
    found = warehouse.query(
        store.root, "SELECT session_id, started_at, ended_at, end_reason FROM analytics_sessions"
    )
    ids = [r[0] for r in found]
    assert len(ids) == len(set(ids)), f"a session twice: {sorted(ids)}"
    return {r[0]: r[1:] for r in found}


def day_ids(store: warm.WarmStore, day: dt.date) -> list[str]:
    path = Path(store.day_path(day, warm.SESSIONS_DATASET))
    return sorted(pq.read_table(path)["session_id"].to_pylist())


async def test_sessions_reach_the_warm_store_once_each(pool: asyncpg.Pool, tmp_path: Path) -> None:
    store = warm.WarmStore(str(tmp_path / "warehouse"))
    await upsert(
        pool,
        session("s1", started_at=at(D, 9)),
        session("s2", started_at=at(D, 9.5), ended_at=at(D, 10), end_reason="quit"),
        session("s3", started_at=at(PREV, 23), ended_at=at(D, 0.5), end_reason="quit"),
        session("s4", started_at=at(D, 9.75)),
        session("no-start", ended_at=at(D, 9), end_reason="crash"),  # never exported
    )
    exported = await maintain(pool, store, at(D, 10.25))
    assert exported == [(PREV, 1, "sessions"), (D, 3, "sessions")]
    assert day_ids(store, PREV) == ["s3"] and day_ids(store, D) == ["s1", "s2", "s4"]
    table = pq.read_table(store.day_path(D, warm.SESSIONS_DATASET))
    assert table.schema == warm_sessions.SESSIONS_SCHEMA
    meta = pq.ParquetFile(store.day_path(D, warm.SESSIONS_DATASET)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert warm_sessions_rows(store)["s1"][1] is None  # still open

    # s1 ends the next day, s4's session_start turns out to be earlier, on PREV.
    await upsert(
        pool,
        session("s1", ended_at=at(D, 26), end_reason="timeout"),
        session("s4", started_at=at(PREV, 22)),
    )
    assert await maintain(pool, store, at(D, 10.5)) == [(PREV, 2, "sessions")]  # closed day
    assert day_ids(store, PREV) == ["s3", "s4"]
    # D is open: its file still lists s4 until its interval passes (one session in two days
    # for at most an interval: the price of an open day's freshness).
    assert await maintain(pool, store, at(D, 11.25)) == [(D, 2, "sessions")]
    assert day_ids(store, D) == ["s1", "s2"]
    rows = warm_sessions_rows(store)
    assert sorted(rows) == ["s1", "s2", "s3", "s4"]
    assert rows["s1"][1:] == (at(D, 26), "timeout")
    assert await maintain(pool, store, at(D, 12.5)) == []  # unchanged: nothing written

    # The hot store forgets them 48 h after their last instant; the warm store keeps them.
    await maintain(pool, store, at(D + dt.timedelta(days=3), 3))
    async with pool.acquire() as conn:
        left = await conn.fetch("SELECT session_id FROM analytics_sessions")
    assert left == []  # "no-start" too: it has no start day to be exported in
    assert sorted(warm_sessions_rows(store)) == ["s1", "s2", "s3", "s4"]

    # Privacy erasure rewrites the sessions' files too.
    removed = warm_erasure.erase_warm(store.root, {PLAYER})
    assert removed[warm.SESSIONS_DATASET] == 4
    assert warm_sessions_rows(store) == {}


async def test_an_unexported_session_stays_in_the_hot_store(pool: asyncpg.Pool) -> None:
    await upsert(pool, session("s9", started_at=at(D, 9), ended_at=at(D, 9.5)))
    async with pool.acquire() as conn:
        report = await storage.apply_hot_retention(
            conn, now=at(D, 72), retention=HOURLY.hot_retention, require_export=True,
            warm_cutoff=None,
        )  # fmt: skip
        assert report.sessions_deleted == 0
        report = await storage.apply_hot_retention(
            conn, now=at(D, 72), retention=HOURLY.hot_retention, require_export=False,
        )  # fmt: skip
        assert report.sessions_deleted == 1
