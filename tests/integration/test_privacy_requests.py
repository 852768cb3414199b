"""`privacy erase` and `privacy access` against real NATS, Postgres and Parquet (local, S3).

Two players go through the real aggregator (one of them also into an older month and into
the DLQ), their days are exported, and a sessions file stands in the warm store; then the CLI
erases one of them in a subprocess. Every store is searched afterwards, the other player must
be untouched, a second run must find nothing, and a late event must not resurrect him.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import DLQ_SUBJECT, EVENTS_SUBJECT, STREAM
from gameplay_analytics.privacy.profile import profile_key, profile_secret
from gameplay_analytics.privacy.pseudonym import Pseudonymiser, SaltBook
from gameplay_analytics.runtime import stream_erasure
from gameplay_analytics.runtime.storage import erasure, hot, objectstore, warm, warm_erasure
from tests.integration.support import (
    DAY_MS,
    NOW,
    NOW_MS,
    aggregating,
    batch,
    event,
    publish,
    wait_for,
)

SECRET = "test-secret"
REPO = Path(__file__).resolve().parents[2]
OLD_MS = NOW_MS - 40 * DAY_MS  # another salt month, and a day the hot store keeps in default


def _ids(player: str) -> set[str]:
    p = Pseudonymiser(SaltBook(secret=SECRET))
    return {p.player_id(player, day=d) for d in (NOW.date(), (NOW - dt.timedelta(days=40)).date())}


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GAMEPLAY_ANALYTICS_SALT_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


async def _hot_counts(dsn: str, ids: set[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE analytics_player_id = ANY($1::text[])",
                sorted(ids),
            )
            for table in erasure.PLAYER_TABLES
        }
    finally:
        await conn.close()


def _warm_count(root: Path, ids: set[str]) -> int:
    found = warm_erasure.access_warm(objectstore.open_root(str(root)), ids)
    return sum(len(rows) for rows in found.values())


async def _stream_count(js: JetStreamContext, player: str, ids: set[str]) -> int:
    match = stream_erasure.PlayerMatch(player_uuid=player, player_ids=ids)
    total = 0
    for subject in (EVENTS_SUBJECT, DLQ_SUBJECT):
        total += len(
            await stream_erasure.find_messages(js, stream=STREAM, subject=subject, match=match)
        )
    return total


def _write_sessions(root: Path, day: dt.date, players: dict[str, str]) -> None:
    """A sessions day as the warm sessions export writes it (one row per session)."""
    folder = root / "gameplay_sessions" / f"event_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "session_id": [f"s-{name}" for name in players],
            "analytics_player_id": list(players.values()),
        }
    )
    pq.write_table(table, folder / "data.parquet", compression="zstd")


async def test_erase_removes_one_player_from_every_store(
    nats_url: str, database: str, js: JetStreamContext, tmp_path: Path
) -> None:
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    guid_e, guid_k = str(uuid.uuid4()), str(uuid.uuid4())
    ids_e, ids_k = _ids(erased), _ids(kept)
    root = tmp_path / "warehouse"
    async with aggregating(nats_url, database, js, warehouse_root=str(root)):
        for player, guid, tag in ((erased, guid_e, "e"), (kept, guid_k, "k")):
            await publish(
                js,
                [
                    batch(player, guid, [event(1, "session_start"), event(2), event(3)],
                          session=f"s-{tag}"),
                    batch(player, guid, [event(4, ts=OLD_MS)], session=f"s-{tag}"),
                    batch(player, guid, [event(5, amount=-1)], session=f"s-{tag}"),  # → DLQ
                ],
            )  # fmt: skip
        await wait_for(lambda: _has(database, ids_e | ids_k, 8))
        await wait_for(lambda: _dlq_has(js, erased, ids_e))
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            store = warm.WarmStore(str(root))
            later = NOW + dt.timedelta(days=1, hours=3)
            assert await warm.export_closed_days(pool, store, now=later)
        finally:
            await pool.close()
        _write_sessions(
            root, NOW.date(), {"e": sorted(ids_e)[0], "k": sorted(ids_k)[0]}
        )  # whichever month: both are searched
        before_k = (await _hot_counts(database, ids_k), _warm_count(root, ids_k))
        assert sum((await _hot_counts(database, ids_e)).values()) == 4  # 3 events + session
        assert _warm_count(root, ids_e) == 5  # 4 events (one month back) + session row

        stores = ["--dsn", database, "--root", str(root), "--nats-url", nats_url]
        access = _cli("privacy", "access", "--player", "-", *stores, "--format", "json",
                      stdin=erased + "\n")  # fmt: skip
        assert access.returncode == 0, access.stderr
        report = json.loads(access.stdout)
        assert report["rows_by_store"]["hot:analytics_events"] == 3
        assert report["rows_by_store"]["hot:analytics_player_profile"] == 1
        assert report["rows_by_store"]["warm:gameplay"] == 4
        assert report["rows_by_store"]["nats:analytics.dlq"] >= 1
        assert report["rows_by_store"]["nats:analytics.events"] >= 3

        done = _cli("privacy", "erase", "--player", "-", *stores, stdin=erased + "\n")
        assert done.returncode == 0, done.stderr
        assert erased not in done.stdout + done.stderr
        assert await _hot_counts(database, ids_e) == dict.fromkeys(erasure.PLAYER_TABLES, 0)
        assert _warm_count(root, ids_e) == 0
        assert await _stream_count(js, erased, ids_e) == 0
        assert (await _hot_counts(database, ids_k), _warm_count(root, ids_k)) == before_k
        assert await _stream_count(js, kept, ids_k) >= 4

        again = _cli("privacy", "erase", "--player", erased, *stores)
        assert again.returncode == 0, again.stderr
        assert "nothing found" in again.stdout

        # A late event of the erased player, then one of the kept player to know it passed.
        await publish(js, [batch(erased, guid_e, [event(9), event(10, amount=-1)], session="s-e")])
        await publish(js, [batch(kept, guid_k, [event(9)], session="s-k")])
        await wait_for(lambda: _has(database, ids_k, 4))  # 3 today + 1 late
        assert sum((await _hot_counts(database, ids_e)).values()) == 0
        assert not await _dlq_has(js, erased, ids_e)  # its refused event is not dead-lettered
        assert await _profiles(database, erased) == 0  # nor its onboarding profile upserted
        assert await _profiles(database, kept) == 1

    conn = await asyncpg.connect(database)
    try:
        audit = await conn.fetch(
            "SELECT kind, rows_by_store::text AS counts, t::text AS line "
            "FROM analytics_privacy_audit t ORDER BY requested_at"
        )
    finally:
        await conn.close()
    assert [r["kind"] for r in audit] == ["access", "erase", "erase"]
    assert json.loads(audit[1]["counts"])["warm:gameplay"] == 4
    assert sum(json.loads(audit[2]["counts"]).values()) == 0
    assert not any(erased in r["line"] or erased.replace("-", "") in r["line"] for r in audit)
    conn = await asyncpg.connect(database)
    try:  # the tombstones hold digests: nothing in them matches a stored pseudonym
        keys = [r[0] for r in await conn.fetch("SELECT * FROM analytics_privacy_erasures")]
    finally:
        await conn.close()
    assert not set(keys) & ids_e and {erasure.tombstone_key(i) for i in ids_e} <= set(keys)


async def test_erasure_waits_for_a_batch_being_written(database: str) -> None:
    """A writer that checked the tombstones before the erasure committed them holds a share
    lock; the erasure waits for it, then deletes what it wrote (no resurrection)."""
    player_id = "ab" * 32
    conn = await asyncpg.connect(database)
    eraser = await asyncpg.connect(database)
    try:
        from gameplay_analytics.runtime import storage

        await storage.migrate(conn)
        row = _row(player_id)
        tx = conn.transaction()
        await tx.start()
        kept, _, _ = await erasure.without_erased(conn, [row], [])
        assert kept == [row]
        erase = asyncio.create_task(erasure.erase_hot(eraser, {player_id}, request_id=uuid.uuid4()))
        await wait_for(lambda: _waiting_on_lock(conn))
        await conn.copy_records_to_table(
            "analytics_events", records=[row], columns=storage.EVENT_COLUMNS
        )
        await tx.commit()
        assert (await erase)["analytics_events"] == 1
        result = await hot.write_batch(conn, [row])  # the same event, redelivered later
        assert result.inserted == 0
        assert await conn.fetchval("SELECT count(*) FROM analytics_events") == 0
    finally:
        await eraser.close()
        await conn.close()


def _row(player_id: str) -> hot.EventRow:
    from gameplay_analytics.runtime import storage

    values = dict(
        analytics_player_id=player_id, client_guid=uuid.uuid4(), seq=1, event_name="xp_gain",
        category="progression", event_ts=NOW, event_day=NOW.date(), received_at=NOW,
        session_id="s", schema_version="1.0.0", sample_rate=1.0, build=None, platform=None,
        shard=None, region=None, country=None, latency_bucket=None, props="{}",
        geo_region=None, envelope_id=None, stream_seq=None, source="client",
    )  # fmt: skip
    return tuple(values[c] for c in storage.EVENT_COLUMNS)


async def _profiles(dsn: str, player: str) -> int:
    # No profile secret is given anywhere here: aggregator and CLI derive it from the salt secret.
    secret = profile_secret(None, SaltBook(secret=SECRET))
    assert secret is not None
    key = profile_key(player, secret)
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM analytics_player_profile WHERE profile_key = $1", key
        )
    finally:
        await conn.close()
    return int(found)


async def _waiting_on_lock(conn: asyncpg.Connection) -> bool:
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    return bool(waiting)


async def _has(dsn: str, ids: set[str], n: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM analytics_events WHERE analytics_player_id = ANY($1::text[])",
            sorted(ids),
        )
    finally:
        await conn.close()
    return bool(found >= n)


async def _dlq_has(js: JetStreamContext, player: str, ids: set[str]) -> bool:
    match = stream_erasure.PlayerMatch(player_uuid=player, player_ids=ids)
    return bool(await stream_erasure.find_messages(js, stream=STREAM, subject=DLQ_SUBJECT,
                                                   match=match))  # fmt: skip


def test_warm_erasure_on_s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    root = objectstore.open_root("s3://privacy/wh", endpoint=s3_endpoint)
    root.filesystem.create_dir("privacy")
    day = f"{root.join('gameplay')}/event_date=2025-10-01"
    root.filesystem.create_dir(day)
    table = pa.table({"analytics_player_id": ["a" * 64, "b" * 64, "a" * 64], "seq": [1, 2, 3]})
    with root.filesystem.open_output_stream(f"{day}/data.parquet") as sink:
        pq.write_table(table, sink)
    assert warm_erasure.erase_warm(root, {"a" * 64})["gameplay"] == 2
    left = pq.read_table(f"{day}/data.parquet", filesystem=root.filesystem)
    assert left.to_pydict() == {"analytics_player_id": ["b" * 64], "seq": [2]}
    assert warm_erasure.erase_warm(root, {"a" * 64})["gameplay"] == 0
    assert [p for _, p in warm_erasure.player_files(root)] == [f"{day}/data.parquet"]


async def test_maintenance_prunes_tombstones_no_event_can_match(database: str) -> None:
    from gameplay_analytics.runtime import storage

    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await storage.migrate(conn)
            await erasure.erase_hot(conn, {"a" * 64, "b" * 64}, request_id=uuid.uuid4())
            await conn.execute(
                "UPDATE analytics_privacy_erasures SET erased_at = $1 "
                "WHERE pseudonym_sha256 = $2",
                NOW - dt.timedelta(days=183 + 63), erasure.tombstone_key("a" * 64),
            )  # fmt: skip
        report = await storage.run_maintenance(
            pool, now=NOW, policy=storage.MaintenancePolicy(), store=None
        )
        assert report is not None and report.tombstones_pruned == 1
        async with pool.acquire() as conn:
            left = await conn.fetch("SELECT pseudonym_sha256 FROM analytics_privacy_erasures")
        assert [r[0] for r in left] == [erasure.tombstone_key("b" * 64)]
    finally:
        await pool.close()


async def test_an_export_running_when_the_erasure_starts_cannot_resurrect(
    database: str, tmp_path: Path
) -> None:
    """An export pass holds the maintenance lock and writes a day from a read taken before
    the erasure; the erasure waits for the pass, then cleans the file it wrote."""
    from gameplay_analytics.runtime import privacy_requests, storage

    player = str(uuid.uuid4())
    player_id = Pseudonymiser(SaltBook(secret=SECRET)).player_id(player, day=NOW.date())
    root = tmp_path / "warehouse"
    holder = await asyncpg.connect(database)
    try:
        await storage.migrate(holder)
        await holder.execute("SELECT pg_advisory_lock($1)", 0x6761_6D65_6D61_696E)
        erase = asyncio.create_task(
            privacy_requests.erase_player(
                player,
                stores=privacy_requests.PrivacyStores(database, warehouse_root=str(root)),
                pseudonymiser=Pseudonymiser(SaltBook(secret=SECRET)),
                now=NOW,
            )
        )
        await wait_for(lambda: _waiting_on_lock(holder))
        # The pass, still holding the lock, writes the day as it read it before the erasure.
        store = warm.WarmStore(str(root))
        stale = pa.Table.from_pylist(
            [dict(zip(storage.EVENT_COLUMNS, _row(player_id), strict=True))]
        ).select([f.name for f in warm.WARM_SCHEMA if f.name != "stored_at"])
        _write_sessions(root, NOW.date(), {"e": player_id})
        store.root.filesystem.create_dir(store.day_dir(NOW.date()))
        pq.write_table(stale, f"{store.day_dir(NOW.date())}/data.parquet")
        await holder.execute("SELECT pg_advisory_unlock($1)", 0x6761_6D65_6D61_696E)
        result = await erase
    finally:
        await holder.close()
    assert result.rows_by_store["warm:gameplay"] == 1
    assert result.rows_by_store["warm:gameplay_sessions"] == 1
    assert _warm_count(root, {player_id}) == 0


async def test_migration_4_digests_tombstones_written_by_migration_2(database: str) -> None:
    from gameplay_analytics.runtime import storage

    conn = await asyncpg.connect(database)
    try:
        await storage.migrate(conn)
        await conn.execute(
            "ALTER TABLE analytics_privacy_erasures RENAME COLUMN pseudonym_sha256 "
            "TO analytics_player_id; "
            "INSERT INTO analytics_privacy_erasures (analytics_player_id, request_id) "
            f"VALUES ('{'c' * 64}', gen_random_uuid()); "
            "DELETE FROM analytics_schema_migrations WHERE version = 4"
        )
        assert await storage.migrate(conn) == [4]
        keys = [
            r[0]
            for r in await conn.fetch("SELECT pseudonym_sha256 FROM analytics_privacy_erasures")
        ]
    finally:
        await conn.close()
    assert keys == [erasure.tombstone_key("c" * 64)]
