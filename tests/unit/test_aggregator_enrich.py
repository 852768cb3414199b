"""The aggregator's pure parts: enrichment into rows, the guard, DLQ entries, backoff, and
legacy (format-1, raw id) messages: sealed with the edge's keys when given, else refused."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from gameplay_analytics.contract.messages import PublishedEvent, RawEventBatch, encode_batch
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.privacy.edge import EdgeKeys, seal
from gameplay_analytics.privacy.pseudonym import SaltBook
from gameplay_analytics.runtime.aggregator import Enricher, retry
from gameplay_analytics.runtime.storage import EVENT_COLUMNS
from gameplay_analytics.sampling import hashing

PLAYER = "0f8fad5b-d9cb-469f-a165-70867728950e"
GUID = "9b2f5c1e-0000-4000-8000-00000000abcd"
TS = int(dt.datetime(2025, 10, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)
C = {name: i for i, name in enumerate(EVENT_COLUMNS)}


KEYS = EdgeKeys(salts=SaltBook(secret="unit"), profile_secret="unit-profile")
REGISTRY = SchemaRegistry.from_released(max_events=10_000)


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher(registry=REGISTRY)


@pytest.fixture(scope="module")
def legacy_enricher() -> Enricher:
    """An enricher given the edge's keys (replay): it seals format-1 input itself."""
    return Enricher(registry=REGISTRY, legacy=KEYS)


def raw(*events: PublishedEvent, **extra: object) -> RawEventBatch:
    b = RawEventBatch(
        session_id="s-1", player_uuid=PLAYER, client_guid=GUID, schema_version="1.0.0",
        received_at=TS + 500, events=list(events), client_ip="81.2.69.142", shard="eu-1",
        region="eu-west", build="b", platform="win64", latency_bucket="lt50", envelope_id=3,
    )  # fmt: skip
    return msgspec.structs.replace(b, **extra) if extra else b


def raw_message(*events: PublishedEvent, **extra: object) -> bytes:
    """A format-1 message, as gateways before the edge step published them."""
    return encode_batch(raw(*events, **extra))


def message(*events: PublishedEvent, **extra: object) -> bytes:
    """A format-2 message, as the gateway publishes it (edge step, then scrub)."""
    batch = raw(*events, **extra)
    edge = KEYS.player(batch.player_uuid, batch.client_ip)
    return edge.scrub(encode_batch(seal(batch, KEYS)))


def ev(
    seq: int, name: str = "xp_gain", ts: int = TS, rate: float = 1.0, **props: object
) -> PublishedEvent:
    return PublishedEvent(seq=seq, name=name, ts=ts, props=props or {"amount": 1, "source": "q"},
                          sample_rate=rate)  # fmt: skip


def test_rows_carry_the_protocol_columns_and_no_raw_identifiers(enricher: Enricher) -> None:
    out = enricher.prepare(
        message(ev(1), ev(2, "engage_enemy", ts=TS + 1000, enemy_id="o", tier="boss")),
        stream_seq=77, now_ms=0,
    )  # fmt: skip
    assert out.dlq == [] and len(out.rows) == 2
    first, second = out.rows
    assert first[C["event_day"]] == dt.date(2025, 10, 31)
    assert second[C["event_day"]] == dt.date(2025, 11, 1)  # UTC day of event_ts
    # The salt is monthly: a new month, a new pseudonym for the same player.
    assert first[C["analytics_player_id"]] != second[C["analytics_player_id"]]
    assert len(first[C["analytics_player_id"]]) == 64
    assert first[C["client_guid"]] == uuid.UUID(GUID)
    assert second[C["category"]] == "combat" and first[C["category"]] == "progression"
    assert msgspec.json.decode(second[C["props"]]) == {"enemy_id": "o", "tier": "boss"}
    assert (first[C["stream_seq"]], first[C["envelope_id"]]) == (77, 3)
    assert first[C["event_ts"]] == dt.datetime(2025, 10, 31, 23, 59, 59, tzinfo=dt.UTC)
    text = repr(out.rows)
    assert PLAYER not in text and "81.2.69.142" not in text


def test_past_the_edge_the_gateways_sampling_decision_is_final(enricher: Enricher) -> None:
    """A format-2 message carries no raw id to hash: what the gateway's guard kept (by the
    same hash, PROTOCOL.md §2) is stored; consent still gates social events."""
    players = [str(uuid.UUID(int=i)) for i in range(1, 60)]
    outside = next(p for p in players if not hashing.keep(p, "xp_gain", rate=0.3))
    out = enricher.prepare(
        message(ev(1, rate=0.3), ev(2, "party_join", party_size=2), player_uuid=outside,
                consent_social=False),
        stream_seq=1, now_ms=0,
    )  # fmt: skip
    assert len(out.rows) == 1 and out.dropped == {"consent": 1}


def test_a_sealed_legacy_message_is_rechecked_by_the_cohort(legacy_enricher: Enricher) -> None:
    players = [str(uuid.UUID(int=i)) for i in range(1, 200)]
    # Kept by its cohort (PROTOCOL.md §2) though the event name alone would drop it.
    player = next(
        p
        for p in players
        if hashing.keep(p, "commodity", rate=0.3) and not hashing.keep(p, "xp_gain", rate=0.3)
    )
    in_cohort = msgspec.structs.replace(ev(1, rate=0.3), cohort="commodity")
    out = legacy_enricher.prepare(
        raw_message(in_cohort, player_uuid=player), stream_seq=1, now_ms=0
    )
    assert len(out.rows) == 1 and not out.dropped
    # A message without a cohort (an older gateway) is checked by the event name, as it was.
    out = legacy_enricher.prepare(
        raw_message(ev(2, rate=0.3), player_uuid=player), stream_seq=2, now_ms=0
    )
    assert out.rows == [] and out.dropped == {"sampling": 1}


def test_legacy_messages_are_sealed_like_the_gateway_would(
    enricher: Enricher, legacy_enricher: Enricher
) -> None:
    events = (ev(1), ev(2, "engage_enemy", ts=TS + 1000, enemy_id=PLAYER.upper(), tier="boss"))
    sealed = legacy_enricher.prepare(raw_message(*events), stream_seq=4, now_ms=0)
    live = enricher.prepare(message(*events), stream_seq=4, now_ms=0)
    assert sealed.rows == live.rows and len(sealed.rows) == 2
    assert sealed.profile is not None and live.profile is not None
    assert sealed.profile.key == live.profile.key == KEYS.player(PLAYER, None).profile_key
    assert PLAYER.lower() not in repr(sealed.rows).lower()


def test_a_legacy_message_without_keys_is_dead_lettered_without_its_ids(
    enricher: Enricher,
) -> None:
    out = enricher.prepare(raw_message(ev(1), ev(2)), stream_seq=9, now_ms=5)
    assert out.rows == [] and len(out.dlq) == 1
    item = out.dlq[0]
    assert item.entry.reason == "legacy_raw_identifier" and item.msg_id == "aggregator-dlq-9"
    assert item.entry.stream_seq == 9 and item.entry.payload_sha256
    encoded = msgspec.json.encode(item.entry).decode()
    assert PLAYER not in encoded and "81.2.69.142" not in encoded


def test_an_event_whose_month_has_no_pseudonym_is_refused(enricher: Enricher) -> None:
    doc = msgspec.json.decode(message(ev(1), ev(2)))
    doc["player_ids"] = {}  # a publisher that left the map empty
    out = enricher.prepare(msgspec.json.encode(doc), stream_seq=3, now_ms=0)
    assert out.rows == [] and [d.entry.reason for d in out.dlq] == ["invalid_event"] * 2
    assert "no analytics_player_id" in out.dlq[0].entry.detail


def test_sessions_from_lifecycle_events(enricher: Enricher) -> None:
    out = enricher.prepare(
        message(PublishedEvent(seq=1, name="session_start", ts=TS, props={}),
                ev(2, "session_crash", ts=TS + 9, reason="oom")),
        stream_seq=1, now_ms=0,
    )  # fmt: skip
    assert [(s.started_at is not None, s.ended_at is not None, s.end_reason)
            for s in out.sessions] == [(True, False, None), (False, True, "crash")]  # fmt: skip
    merged = out.sessions[0]
    merged.merge(out.sessions[1])
    assert merged.end_reason == "crash" and merged.started_at and merged.ended_at


def test_poison_becomes_dlq_entries_without_raw_ids(enricher: Enricher) -> None:
    bad = ev(2, "engage_enemy", enemy_id="o", tier="mythic")
    out = enricher.prepare(message(ev(1), bad, ev(3, ts=-1)), stream_seq=5, now_ms=9)
    assert [r[C["seq"]] for r in out.rows] == [1]
    assert [(d.entry.reason, d.msg_id) for d in out.dlq] == [
        ("invalid_event", "aggregator-dlq-5-1"), ("invalid_event", "aggregator-dlq-5-2"),
    ]  # fmt: skip
    assert out.dlq[0].entry.analytics_player_id == out.rows[0][C["analytics_player_id"]]
    garbage = enricher.prepare(
        b'{"player_uuid": "' + PLAYER.encode() + b'"', stream_seq=6, now_ms=0
    )
    entry = garbage.dlq[0].entry
    assert entry.reason == "undecodable" and entry.payload_bytes and entry.stream_seq == 6
    assert PLAYER not in msgspec.json.encode(entry).decode()
    unknown = enricher.prepare(message(ev(1), schema_version="7.0.0"), stream_seq=7, now_ms=0)
    assert unknown.dlq[0].entry.reason == "unknown_schema_version" and unknown.rows == []
    bad_guid = enricher.prepare(message(ev(1), client_guid="nope"), stream_seq=8, now_ms=0)
    assert bad_guid.dlq[0].entry.reason == "invalid_message"


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = retry.Backoff(base=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[5:])
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_error_classification() -> None:
    import asyncpg

    assert retry.is_poison(asyncpg.DataError("x"))
    assert not retry.is_poison(ConnectionRefusedError())
    assert isinstance(ConnectionRefusedError(), retry.TRANSIENT)
    assert retry.error_kind(ConnectionRefusedError()) == "postgres_unavailable"


def test_the_players_own_uuid_and_ip_in_props_are_never_stored(enricher: Enricher) -> None:
    """An identifier field can hold anything identifier-shaped: the session's own player UUID
    and IP are redacted (by the edge step) wherever a client put them, in any case."""
    out = enricher.prepare(
        message(
            ev(1, "engage_enemy", enemy_id=PLAYER.upper(), tier="boss"),
            ev(2, "loot_drop", item_id="81.2.69.142", rarity="epic"),
            ev(3, "loot_drop", item_id="181.2.69.1429", rarity="epic"),  # not the IP
        ),
        stream_seq=1, now_ms=0,
    )  # fmt: skip
    props = [msgspec.json.decode(row[C["props"]]) for row in out.rows]
    assert props[0]["enemy_id"] == "redacted" and props[1]["item_id"] == "redacted"
    assert props[2]["item_id"] == "181.2.69.1429"
    assert PLAYER.lower() not in repr(out.rows).lower() and "'81.2.69.142'" not in repr(out.rows)


def test_time_bounds_send_future_and_expired_events_to_the_dlq(enricher: Enricher) -> None:
    minute, day = 60_000, 86_400_000
    received = TS + 500  # the gateway's clock, as `message` stamps it
    out = enricher.prepare(
        message(ev(1, ts=received + 9 * minute), ev(2, ts=received + 11 * minute),
                ev(3, ts=received + 400 * day), ev(4, ts=TS - 184 * day), ev(5, ts=TS - 182 * day)),
        stream_seq=3, now_ms=TS,
    )  # fmt: skip
    assert sorted(row[C["seq"]] for row in out.rows) == [1, 5]
    reasons = {item.entry.event["seq"]: item.entry.reason for item in out.dlq if item.entry.event}
    assert reasons == {2: "clock_skew", 3: "clock_skew", 4: "too_old"}
    assert all(PLAYER not in item.entry.detail for item in out.dlq)


def test_time_bounds_are_configurable() -> None:
    from gameplay_analytics.runtime.aggregator.enrich import TimeBounds

    strict = Enricher(
        registry=REGISTRY,
        bounds=TimeBounds(max_skew=dt.timedelta(seconds=1), retention_days=7),
    )
    out = strict.prepare(
        message(ev(1, ts=TS + 2_000), ev(2, ts=TS - 8 * 86_400_000), ev(3)), stream_seq=1,
        now_ms=TS,
    )  # fmt: skip
    assert [row[C["seq"]] for row in out.rows] == [3]
    assert sorted(item.entry.reason for item in out.dlq) == ["clock_skew", "too_old"]


def test_a_bundle_is_read_part_by_part_with_distinct_dlq_ids(enricher: Enricher) -> None:
    """Group commit (contract.messages): one stream message, several batches; each part is
    prepared alone and its DLQ ids stay unique within the message."""
    from gameplay_analytics.contract.messages import encode_bundle, split_events

    other = str(uuid.UUID(int=99))
    bad = ev(2, "engage_enemy", enemy_id="o", tier="mythic")
    first, second = message(ev(1), bad), message(ev(1), bad, client_guid=other)
    parts = split_events(encode_bundle([first, second]))
    assert parts == [first, second] and split_events(first) == [first]
    out = [enricher.prepare(p, stream_seq=5, now_ms=0, part=i) for i, p in enumerate(parts)]
    assert [r[C["client_guid"]] for o in out for r in o.rows] == [uuid.UUID(GUID), uuid.UUID(other)]
    assert [d.msg_id for o in out for d in o.dlq] == ["aggregator-dlq-5-1", "aggregator-dlq-5.1-1"]
    assert split_events(b"[not json") == [b"[not json"]  # refused whole, as undecodable
