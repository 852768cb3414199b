"""The aggregator against real nats-server and Postgres: exactly once, privacy, guard, DLQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import msgspec
from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import (
    EVENTS_SUBJECT,
    KV_SCHEMAS_KEY,
    DlqEntry,
    PublishedEvent,
)
from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.sampling import hashing
from tests.integration.support import (
    NOW_MS,
    aggregating,
    batch,
    count_rows,
    dlq_entries,
    edge_keys,
    event,
    next_seq,
    publish,
    raw_batch,
    running,
    settings,
    wait_for,
)


async def test_batches_are_stored_exactly_once(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    players = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(5)]
    batches = [
        batch(p, g, [event(i * 10 + k) for k in range(10)], session=f"s-{p[:8]}")
        for p, g in players
        for i in range(4)
    ]
    async with aggregating(nats_url, database, js) as agg:
        await publish(js, batches)
        await wait_for(lambda: _rows_are(database, 200))
        # The same envelopes again under other Msg-Ids (a client retry outside JetStream's
        # dedup window): JetStream stores them, Postgres refuses the second copy.
        await publish(js, batches, dedup=False)
        # And one envelope that repeats an event inside itself.
        p, g = players[0]
        await publish(js, [batch(p, g, [event(1000), event(1000)])], dedup=False)
        await wait_for(lambda: _acked(agg, 41))
        metrics = await _get(f"http://127.0.0.1:{agg.probe_port}/metrics")
        ready = await _get(f"http://127.0.0.1:{agg.probe_port}/readyz")
    assert "analytics_events_persisted_total 201.0" in metrics
    assert "analytics_events_deduplicated_total 201.0" in metrics
    assert "analytics_consumer_lag" in metrics and ready == "ready\n"
    assert await count_rows(database) == 201
    assert agg.stats.persisted == 201
    assert agg.stats.deduplicated == 201
    conn = await asyncpg.connect(database)
    try:
        keys = await conn.fetch(
            "SELECT analytics_player_id, client_guid, seq, count(*) FROM analytics_events "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1"
        )
    finally:
        await conn.close()
    assert keys == []


async def test_no_column_holds_a_raw_player_uuid_or_ip(
    nats_url: str, database: str, js: JetStreamContext, geoip_db: Path
) -> None:
    player, guid, ip = str(uuid.uuid4()), str(uuid.uuid4()), "81.2.69.142"
    events = [
        event(1, "session_start", ts=NOW_MS),
        event(2, "engage_enemy", ts=NOW_MS + 1000),
        event(3, "session_end", ts=NOW_MS + 60_000),
    ]
    keys = edge_keys(geoip_db=geoip_db)  # the gateway's: it geolocates, then drops the IP
    async with aggregating(nats_url, database, js):
        await publish(js, [batch(player, guid, events, session="sess-42", ip=ip, keys=keys)])
        await wait_for(lambda: _rows_are(database, 3))
    conn = await asyncpg.connect(database)
    try:
        dump = [
            str(r[0])
            for table in ("analytics_events", "analytics_sessions")
            for r in await conn.fetch(f"SELECT t::text FROM {table} t")
        ]
        row = await conn.fetchrow("SELECT * FROM analytics_events WHERE seq = 2")
        session = await conn.fetchrow("SELECT * FROM analytics_sessions")
    finally:
        await conn.close()
    assert len(dump) == 4
    for text in dump:
        assert player not in text.lower() and player.replace("-", "") not in text.lower()
        assert ip not in text
    assert row is not None and len(row["analytics_player_id"]) == 64
    assert (row["country"], row["geo_region"], row["region"]) == ("GB", "ENG", "eu-west")
    assert (row["category"], row["shard"], row["build"]) == ("combat", "eu-1", "2025.10.1+abc")
    assert session is not None
    assert session["session_id"] == "sess-42" and session["end_reason"] == "logout"
    assert (session["ended_at"] - session["started_at"]).total_seconds() == 60
    assert session["country"] == "GB"


async def test_consent_is_rechecked_and_the_gateways_sampling_is_final(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    # A player outside the 50 % sample of the commodity cohort: past the edge no raw id is
    # left to hash, so what the gateway's guard kept (by the same hash) is stored.
    players = [str(uuid.uuid4()) for _ in range(40)]
    out = next(p for p in players if not hashing.keep(p, "commodity", rate=0.5))
    half = [PublishedEvent(seq=1, name="xp_gain", ts=NOW_MS, props={"amount": 1, "source": "q"},
                           sample_rate=0.5, cohort="commodity")]  # fmt: skip
    async with aggregating(nats_url, database, js) as agg:
        await publish(js, [
            batch(out, str(uuid.uuid4()), half),
            batch(out, str(uuid.uuid4()), [event(5, "party_join")], consent_social=False),
        ])  # fmt: skip
        await wait_for(lambda: _acked(agg, 2))
    assert await count_rows(database) == 1
    assert agg.stats.dropped == {"consent": 1}


async def test_a_legacy_message_with_raw_ids_is_dead_lettered_without_them(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    """Upgrade: a format-1 message (an older gateway's: raw UUID and IP) still in the stream
    meets an aggregator that holds no salt. It goes to the DLQ as `legacy_raw_identifier`,
    naming its stream sequence (for `replay --from-stream` with the salt), with neither the
    UUID nor the IP; the format-2 message next to it is stored."""
    start = await next_seq(js)
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    agg = Aggregator(settings(nats_url, database), start_sequence=start)
    async with running(agg):
        await publish(js, [raw_batch(player, guid, [event(1)]), batch(player, guid, [event(2)])])
        await wait_for(lambda: _acked(agg, 2))
    assert await count_rows(database) == 1
    assert agg.stats.dlq == {"legacy_raw_identifier": 1}
    (data,) = await dlq_entries(js, start)
    entry = msgspec.json.decode(data, type=DlqEntry)
    assert entry.reason == "legacy_raw_identifier" and entry.stream_seq == start
    assert entry.client_guid == guid and entry.payload_sha256
    assert player.encode() not in data and b"81.2.69.142" not in data


async def test_poison_goes_to_the_dlq_and_the_rest_is_stored(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    start = await next_seq(js)
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    bad_event = PublishedEvent(seq=2, name="engage_enemy", ts=NOW_MS,
                               props={"enemy_id": "orc", "tier": "mythic"})  # fmt: skip
    agg = Aggregator(settings(nats_url, database), start_sequence=start)
    async with running(agg):
        await js.publish(EVENTS_SUBJECT, b'{"not": "a batch", "player_uuid": "' + player.encode())
        await publish(js, [
            batch(player, guid, [event(1), bad_event, event(3)]),
            batch(player, guid, [event(4)], schema_version="9.9.9"),
            batch(player, guid, [event(5, ts=-5)]),
        ])  # fmt: skip
        await wait_for(lambda: _acked(agg, 4))
    entries = [msgspec.json.decode(d, type=DlqEntry) for d in await dlq_entries(js, start)]
    reasons = sorted(e.reason for e in entries)
    assert reasons == ["invalid_event", "invalid_event", "undecodable", "unknown_schema_version"]
    assert await count_rows(database) == 2  # seq 1 and 3
    assert agg.stats.dlq == {"invalid_event": 2, "undecodable": 1, "unknown_schema_version": 1}
    raw = b"".join(await dlq_entries(js, start, settle=0))
    assert player.encode() not in raw and b"81.2.69.142" not in raw
    undecodable = next(e for e in entries if e.reason == "undecodable")
    assert undecodable.payload_sha256 and undecodable.payload_bytes and undecodable.stream_seq
    invalid = next(e for e in entries if e.reason == "invalid_event" and e.event["seq"] == 2)
    # The DLQ names the field and the rule, never the client's value (it could be any text).
    assert invalid.detail.startswith("props.tier: <value> is not one of")
    assert "mythic" not in repr(invalid) and invalid.analytics_player_id


async def _get(url: str) -> str:
    import urllib.request

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())

    return await asyncio.to_thread(fetch)


async def _rows_are(dsn: str, n: int) -> bool:
    return await count_rows(dsn) == n


async def _acked(agg: Aggregator, n: int) -> bool:
    return agg.stats.messages >= n


async def test_schema_versions_published_to_kv_are_stored_not_dead_lettered(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    """A SchemaVersion the operator accepted reaches the aggregators too (NATS KV), so events
    a gateway accepted under it are stored; `accepted` narrows gateways' intake only."""
    released = json.loads((schemas_dir() / "analytics/released/1.0.0.schema.json").read_text())
    newer = {**released, "version": "1.1.0"}
    newer["definitions"] = {**released["definitions"]}
    loot = newer["definitions"]["loot_drop"]
    newer["definitions"]["loot_drop"] = {
        **loot, "properties": {**loot["properties"], "source": {"type": "string", "maxLength": 64}},
    }  # fmt: skip
    kv = await jetstream.ensure_config_bucket(js)
    value = {"accepted": ["1.0.0"], "documents": {"1.1.0": newer}}  # 1.1.0 since retired
    await kv.put(KV_SCHEMAS_KEY, json.dumps(value).encode())
    start = await next_seq(js)
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    agg = Aggregator(settings(nats_url, database), start_sequence=start)
    try:
        async with running(agg):
            await wait_for(lambda: _has_version(agg, "1.1.0"))
            props = {"item_id": "a", "rarity": "epic", "source": "boss"}
            loot_event = PublishedEvent(seq=1, name="loot_drop", ts=NOW_MS, props=props)
            await publish(js, [batch(player, guid, [loot_event], schema_version="1.1.0")])
            await wait_for(lambda: _acked(agg, 1))
    finally:
        await kv.delete(KV_SCHEMAS_KEY)
    assert await count_rows(database) == 1
    assert agg.stats.dlq == {}


async def _has_version(agg: Aggregator, version: str) -> bool:
    return version in agg.schema_versions
