"""The warm export to a local folder and to S3 (moto server mode), read back with DuckDB and
compared with Postgres row by row."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gameplay_analytics.insights import warehouse
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import hot, warm

D = dt.date(2025, 10, 1)
NOW = dt.datetime(2025, 10, 2, 6, 0, tzinfo=dt.UTC)
COLUMNS = [f.name for f in warm.WARM_SCHEMA]


@pytest.fixture
async def filled(database: str) -> AsyncIterator[asyncpg.Pool]:
    """Postgres with a day of varied rows: NULLs, empty strings, unicode, nested props."""
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await storage.migrate(conn)
        await storage.ensure_partitions(conn, today=D, ahead_days=1)
        rows = [_row(i) for i in range(2500)]
        await hot.write_batch(conn, rows)
    yield pool
    await pool.close()


def _row(i: int) -> hot.EventRow:
    ts = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC) + dt.timedelta(milliseconds=i * 7919)
    props: dict[str, Any] = {"amount": i, "source": "quest" if i % 2 else "kill"}
    if i % 5 == 0:
        props = {"item_id": 'sword,"long"', "rarity": "epic", "nested": {"ä": [1, None]}}
    values: dict[str, Any] = dict(
        analytics_player_id=f"{i % 37:064x}", client_guid=uuid.UUID(int=i % 11), seq=i,
        event_name="xp_gain", category="progression", event_ts=ts, event_day=D,
        received_at=ts + dt.timedelta(milliseconds=40), session_id=f"s-{i % 13}",
        schema_version="1.0.0", sample_rate=0.3, build=None if i % 3 else "b1",
        platform="" if i % 7 == 0 else "win64", shard=None, region="eu-west",
        country="GB" if i % 2 else None, latency_bucket="lt50", props=json.dumps(props),
        geo_region=None, envelope_id=i // 10, stream_seq=i, source="client",
    )  # fmt: skip
    return tuple(values[c] for c in storage.EVENT_COLUMNS)


async def _postgres_rows(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        found = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM analytics_events ORDER BY seq")
    out = []
    for r in found:
        values = dict(r)
        values["client_guid"] = str(values["client_guid"])
        values["props"] = json.loads(values["props"])
        out.append(tuple(values[c] for c in COLUMNS))
    return out


def _warehouse_rows(root: Any) -> list[tuple[Any, ...]]:
    rows = warehouse.query(root, f"SELECT {', '.join(COLUMNS)} FROM analytics_events ORDER BY seq")
    props = COLUMNS.index("props")
    return [tuple(json.loads(v) if i == props else v for i, v in enumerate(r)) for r in rows]


async def _export_and_compare(pool: asyncpg.Pool, store: warm.WarmStore) -> None:
    exported = await storage.export_closed_days(pool, store, now=NOW)
    assert [(e.day, e.rows, e.mode) for e in exported] == [(D, 2500, "full")]
    expected = await _postgres_rows(pool)
    got = _warehouse_rows(store.root)
    assert len(got) == len(expected) == 2500
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs
    # Re-running the export of the day replaces the file: still each row exactly once.
    await store.export_day(pool, D)
    assert warehouse.query(store.root, "SELECT count(*), count(DISTINCT seq) "
                           "FROM analytics_events") == [(2500, 2500)]  # fmt: skip
    assert await storage.export_closed_days(pool, store, now=NOW) == []


async def test_export_to_local_disk(filled: asyncpg.Pool, tmp_path: Path) -> None:
    store = warm.WarmStore(str(tmp_path / "wh"))
    await _export_and_compare(filled, store)
    files = sorted(
        p.relative_to(tmp_path / "wh") for p in (tmp_path / "wh").rglob("*") if p.is_file()
    )
    assert files == [Path("gameplay/event_date=2025-10-01/data.parquet")]
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(tmp_path / "wh" / files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


async def test_export_to_s3(filled: asyncpg.Pool, s3_endpoint: str, aws_env: None) -> None:
    import boto3

    bucket = f"warm-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = warm.WarmStore(f"s3://{bucket}/analytics", endpoint=s3_endpoint)
    await _export_and_compare(filled, store)
    keys = [
        o["Key"]
        for o in boto3.client(
            "s3", endpoint_url=s3_endpoint, region_name="us-east-1"
        ).list_objects_v2(Bucket=bucket)["Contents"]
        if o["Key"].endswith(".parquet")
    ]
    assert keys == ["analytics/gameplay/event_date=2025-10-01/data.parquet"]
    assert store.days() == [D]
    store.delete_day(D)
    assert store.days() == []
