"""What a load run left in Postgres: counts, exact reconciliation, end-to-end latency.

Only the run's own installations (`client_guid`s) are read, so a shared or long-lived database
gives the run's figures. Latency is `stored_at − event_ts`: the row's commit-time stamp minus
the client's `track()` time, both on this machine's clock for the local stack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

__all__ = [
    "Latency",
    "Reconciliation",
    "commit_column",
    "count_stored",
    "latency",
    "reconcile",
    "wait_stored",
]

_TABLE = "analytics_events"
# Preferred first: `stored_at` is clock_timestamp() at COPY; the others are stand-ins.
_COMMIT_COLUMNS = ("stored_at", "ingested_at", "received_at")
_PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Latency:
    """track() → stored, in milliseconds, over the run's stored events."""

    column: str  # which column stood for the commit time
    events: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # Per second of track() time: (unix second, events, p50, p95, p99) for the plot.
    series: list[tuple[float, int, float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Reconciliation:
    """Every event the SDKs saw acked must be stored exactly once."""

    expected: int  # events acked as stored (exact keys plus guard-partial envelopes' counts)
    stored: int  # rows of the run's installations
    missing: int
    doubled: int  # rows beyond the first per (client_guid, seq)
    unacked_stored: int  # stored but never acked (acks lost to a dropped connection): allowed

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.doubled == 0


async def commit_column(conn: asyncpg.Connection) -> str:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
        _TABLE,
    )
    present = {r["column_name"] for r in rows}
    for column in _COMMIT_COLUMNS:
        if column in present:
            return column
    raise RuntimeError(f"{_TABLE} has none of {_COMMIT_COLUMNS}: is this the analytics database?")


async def count_stored(conn: asyncpg.Connection, guids: Sequence[str]) -> int:
    count = await conn.fetchval(
        f"SELECT count(*) FROM {_TABLE} WHERE client_guid = ANY($1::uuid[])", list(guids)
    )
    return int(count)


async def wait_stored(
    dsn: str,
    guids: Sequence[str],
    *,
    expected: int,
    timeout_s: float,
    quiet_s: float = 5.0,
) -> int:
    """Poll until the run's stored rows reach `expected` (then once more, for stragglers), or
    stop changing for `quiet_s`, or `timeout_s` passes; returns the last count."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        last, since = -1, time.monotonic()
        while True:
            count = await count_stored(conn, guids)
            now = time.monotonic()
            if count != last:
                last, since = count, now
            if count >= expected or now - since >= quiet_s or now >= deadline:
                return count
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def latency(conn: asyncpg.Connection, guids: Sequence[str], *, since: float) -> Latency:
    """Percentiles of commit time − track() time for the run's events tracked after `since`
    (Unix seconds: lets a caller leave a warm-up out)."""
    column = await commit_column(conn)
    delay = f"extract(epoch FROM ({column} - event_ts)) * 1000"
    where = "client_guid = ANY($1::uuid[]) AND event_ts >= to_timestamp($2)"
    pct = ", ".join(f"percentile_cont({p}) WITHIN GROUP (ORDER BY {delay})" for p in _PERCENTILES)
    row = await conn.fetchrow(
        f"SELECT count(*), {pct}, max({delay}) FROM {_TABLE} WHERE {where}", list(guids), since
    )
    series = await conn.fetch(
        f"SELECT extract(epoch FROM date_trunc('second', event_ts)) AS at, count(*) AS n, {pct} "
        f"FROM {_TABLE} WHERE {where} GROUP BY 1 ORDER BY 1",
        list(guids),
        since,
    )
    values = [float(v) if v is not None else 0.0 for v in row.values()]
    return Latency(
        column=column,
        events=int(values[0]),
        p50_ms=values[1],
        p95_ms=values[2],
        p99_ms=values[3],
        max_ms=values[4],
        series=[(float(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in series],
    )


async def reconcile(
    conn: asyncpg.Connection,
    guids: Sequence[str],
    *,
    exact: Iterable[tuple[str, int]],
    partial: Sequence[tuple[str, set[int], int]] = (),
) -> Reconciliation:
    """Compare the acked set with the stored rows, in Postgres: a temp table of the expected
    keys keeps a million-event run from shipping every stored key to Python.

    `partial` lists envelopes where the gateway's guard dropped some events: their seqs are
    candidates and `count` of them must be stored (which ones the guard kept is its secret).
    """
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE loadgen_expected (client_guid uuid, seq bigint) ON COMMIT DROP"
        )
        await conn.copy_records_to_table(
            "loadgen_expected", records=[(g, s) for g, s in exact], columns=["client_guid", "seq"]
        )
        await conn.execute("ANALYZE loadgen_expected")
        row = await conn.fetchrow(
            f"""
            WITH stored AS (
                SELECT client_guid, seq, count(*) AS n FROM {_TABLE}
                WHERE client_guid = ANY($1::uuid[]) GROUP BY 1, 2
            )
            SELECT
                (SELECT count(*) FROM loadgen_expected) AS expected,
                (SELECT coalesce(sum(n), 0) FROM stored) AS stored,
                (SELECT count(*) FROM loadgen_expected e
                   LEFT JOIN stored s USING (client_guid, seq) WHERE s.n IS NULL) AS missing,
                (SELECT coalesce(sum(n - 1), 0) FROM stored WHERE n > 1) AS doubled,
                (SELECT count(*) FROM stored s
                   LEFT JOIN loadgen_expected e USING (client_guid, seq)
                   WHERE e.seq IS NULL) AS unexpected
            """,
            list(guids),
        )
    expected, missing, unexpected = (
        int(row["expected"]),
        int(row["missing"]),
        int(row["unexpected"]),
    )
    for guid, seqs, count in partial:
        found = await conn.fetchval(
            f"SELECT count(DISTINCT seq) FROM {_TABLE} "
            "WHERE client_guid = $1::uuid AND seq = ANY($2::bigint[])",
            guid,
            sorted(seqs),
        )
        expected += count
        missing += max(0, count - int(found))
        unexpected -= int(found)
    return Reconciliation(
        expected=expected,
        stored=int(row["stored"]),
        missing=missing,
        doubled=int(row["doubled"]),
        unacked_stored=max(0, unexpected),
    )
