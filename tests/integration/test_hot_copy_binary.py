"""The aggregator's binary COPY (`storage.copy_binary`, encoded while rows are built) stores
exactly what asyncpg's record encoding of the same rows stores."""

from __future__ import annotations

import datetime as dt

import asyncpg

from gameplay_analytics.contract.messages import SOURCE_SERVER, PublishedEvent
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.aggregator import Enricher
from gameplay_analytics.runtime.storage import copy_binary, hot
from tests.unit.test_aggregator_enrich import REGISTRY, TS, ev, message

NOW = TS + 60_000


def _messages() -> list[bytes]:
    return [
        # Two months, so two pseudonyms and two days; two sample rates.
        message(
            ev(1),
            ev(2, ts=TS + 2000, rate=0.25),
            ev(3, ts=TS + 1, amount=3, source="q:1/a"),
            ev(4, "engage_enemy", ts=TS + 999, enemy_id="o", tier="boss"),
        ),
        # Missing optional values (NULLs), an envelope id of the int8 range's end, a server.
        message(ev(5), envelope_id=2**63 - 1, shard=None, build=None, source=SOURCE_SERVER),
        message(PublishedEvent(seq=6, name="client_tick", ts=TS, props={"fps": 59.8})),
    ]


async def _stored(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    columns = ", ".join(storage.EVENT_COLUMNS)
    found = await conn.fetch(f"SELECT {columns} FROM analytics_events ORDER BY seq")
    return [tuple(r) for r in found]


async def test_binary_copy_stores_what_record_encoding_stores(database: str) -> None:
    enricher = Enricher(registry=REGISTRY)
    prepared = [enricher.prepare(m, stream_seq=i, now_ms=NOW) for i, m in enumerate(_messages())]
    assert all(p.copy is not None and not p.dlq for p in prepared)
    rows = [row for p in prepared for row in p.rows]
    encoded = copy_binary.Encoded(
        [p.copy for p in prepared if p.copy is not None],
        {i for p in prepared for i in p.player_ids},
    )
    conn = await asyncpg.connect(database)
    try:
        await storage.migrate(conn)
        day = dt.datetime.fromtimestamp(TS / 1000, dt.UTC).date()
        await storage.ensure_partitions(conn, today=day - dt.timedelta(days=1), ahead_days=3)
        done = await hot.write_batch(conn, rows, encoded=encoded)
        assert (done.inserted, done.slow_path) == (len(rows), False)
        binary = await _stored(conn)
        # The same encoded batch again: every row a duplicate, the slow path finds them.
        again = await hot.write_batch(conn, rows, encoded=encoded)
        assert (again.inserted, again.duplicates, again.slow_path) == (0, len(rows), True)
        await conn.execute("TRUNCATE analytics_events")
        await hot.write_batch(conn, rows)
        assert await _stored(conn) == binary
    finally:
        await conn.close()
    assert len(binary) == 6 and {r[1] for r in binary} == {rows[0][1]}
    assert {r[0] for r in binary} == set(encoded.player_ids) and len(encoded.player_ids) == 2


def test_an_unencodable_message_keeps_its_rows_for_the_refusing_path() -> None:
    """A value out of a column's range cannot be encoded: the rows still go to Postgres
    (asyncpg's encoding), which refuses them, and the committer dead-letters the message."""
    enricher = Enricher(registry=REGISTRY)
    out = enricher.prepare(message(ev(1), envelope_id=2**63), stream_seq=1, now_ms=NOW)
    assert out.copy is None and len(out.rows) == 1
