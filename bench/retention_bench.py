"""What exact 48 h hot retention costs: one maintenance trim of the day the horizon falls in
(a DELETE of the rows past the horizon, with the count check under an exclusive lock), as a
ratio to dropping the same day's partition whole, which is what day-granular retention does.

A day of ROWS events; the trim removes five minutes' worth (one maintenance interval), the
common case, and half a day (the first pass after a long pause), the worst one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from gameplay_analytics.local.services import PostgresServer
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import partitions

ROWS = 500_000
D = dt.date(2025, 10, 1)
START = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC)


def _rows(n: int) -> list[tuple[Any, ...]]:
    step = dt.timedelta(days=1) / n
    guid = uuid.uuid4()
    out = []
    for i in range(n):
        values: dict[str, Any] = dict(
            analytics_player_id=f"{i % 5000:064x}", client_guid=guid, seq=i, event_name="xp_gain",
            category="progression", event_ts=START + i * step, event_day=D, received_at=START,
            session_id="s", schema_version="1.0.0", sample_rate=1.0, build="b", platform="p",
            shard=None, region=None, country=None, latency_bucket=None,
            props='{"amount": 1, "source": "q"}', geo_region=None, envelope_id=None,
            stream_seq=None,
        )  # fmt: skip
        out.append(tuple(values[c] for c in storage.EVENT_COLUMNS))
    return out


async def _fill(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.execute("DROP TABLE IF EXISTS analytics_events CASCADE")
    await conn.execute("DELETE FROM analytics_schema_migrations")
    await conn.execute("DROP TABLE IF EXISTS analytics_warm_exports")
    await storage.migrate(conn)
    await storage.ensure_partitions(conn, today=D, ahead_days=0)
    await conn.copy_records_to_table(
        "analytics_events", records=rows, columns=storage.EVENT_COLUMNS
    )
    await conn.execute(
        "INSERT INTO analytics_warm_exports (event_day, rows, bytes, path, mode) "
        "VALUES ($1, $2, 0, 'x', 'full')",
        D,
        len(rows),
    )
    await conn.execute("ANALYZE analytics_events")


async def _timed(conn: asyncpg.Connection, horizon: dt.datetime) -> tuple[float, int]:
    began = time.perf_counter()
    report = await partitions.apply_hot_retention(
        conn, now=horizon + dt.timedelta(hours=48), retention=dt.timedelta(hours=48),
        require_export=True,
    )  # fmt: skip
    return time.perf_counter() - began, report.trimmed_rows + len(report.dropped_days)


async def _run(tmp: Path) -> list[dict[str, Any]]:
    postgres = PostgresServer(tmp / "pg" / "data")
    postgres.start()
    try:
        rows = _rows(ROWS)
        conn = await asyncpg.connect(postgres.dsn)
        try:
            await storage.migrate(conn)
            results = {}
            for label, horizon in (
                ("trim_5min", START + dt.timedelta(minutes=5)),
                ("trim_12h", START + dt.timedelta(hours=12)),
                ("drop_day", START + dt.timedelta(days=1)),
            ):
                await _fill(conn, rows)
                results[label] = await _timed(conn, horizon)
        finally:
            await conn.close()
    finally:
        postgres.stop()
    raw = results["drop_day"][0]
    return [
        {
            "component": "retention",
            "metric": f"{label}_of_{ROWS}_rows_s (removed {removed})",
            "value": round(seconds, 4),
            "raw": round(raw, 4),
            "ratio": round(seconds / raw, 1) if raw else None,
            "target": None,
        }
        for label, (seconds, removed) in results.items()
    ]


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="retention-bench-") as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    for result in run():
        print(result)
