"""The gateway's intake without a socket: a frame, a context, the live config and the time in;
messages, drops and the ack out."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from gameplay_analytics.contract import frames, messages
from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.privacy.edge import EdgeKeys
from gameplay_analytics.privacy.pseudonym import SaltBook
from gameplay_analytics.runtime.config import default_config
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.handshake import SessionContext
from gameplay_analytics.runtime.gateway.intake import intake
from gameplay_analytics.runtime.gateway.replies import TokenBucket

PLAYER = "5d3c2b1a-0f9e-4d8c-8b7a-6e5d4c3b2a10"
GUID = str(uuid.UUID(int=7))
LIVE = default_config()
KEYS = EdgeKeys(salts=SaltBook(secret="unit"), profile_secret="unit-profile")
EDGE = KEYS.player(PLAYER, "10.0.0.1")


def context(consent: Consent | None = None) -> SessionContext:
    return SessionContext(
        session_id="s-1", player_uuid=PLAYER, client_guid=GUID, schema="1.0.0",
        consent=consent or Consent(), client_ip="10.0.0.1", shard="eu-1",
    )  # fmt: skip


def guard(ctx: SessionContext) -> SamplingGuard:
    return SamplingGuard(
        player_uuid=ctx.player_uuid, consent=ctx.consent, rules=LIVE.rules, multiplier=1.0
    )


def frame(events: list[dict[str, object]], *, schema: str = "1.0.0") -> frames.AnalyticsFrame:
    raw = msgspec.json.encode(events)
    return frames.AnalyticsFrame(id=9, schema=schema, events=msgspec.Raw(raw))


def test_kept_events_become_one_batch_and_rejections_dlq_entries() -> None:
    ctx = context()
    events = [
        {"seq": 1, "name": "session_start", "ts": 1, "props": {}},
        {"seq": 2, "name": "encounter_end", "ts": 2,
         "props": {"encounter_id": "e", "tier": "boss", "outcome": "win"}},
        {"seq": 3, "name": "loot_drop", "ts": 3, "props": {"item_id": "i", "rarity": "mythic"}},
    ]  # fmt: skip
    result = intake(
        frame(events), ctx, guard(ctx), LIVE, now=0.0, received_at=1_000, latency="<50ms",
        edge=EDGE,
    )  # fmt: skip
    assert (result.ack.id, result.ack.accepted, result.ack.dropped) == (9, 2, 0)
    assert [r.seq for r in result.ack.rejected] == [3]
    assert (result.weight, result.valid, result.combat) == (3, 2, True)
    batch_msg, dlq_msg = result.outbound
    assert batch_msg.subject == messages.EVENTS_SUBJECT
    assert batch_msg.msg_id == messages.msg_id(EDGE.profile_key, GUID, 1, 3)
    for message in result.outbound:  # the edge step: no raw id, no IP in the broker
        assert PLAYER not in message.payload.decode() and "10.0.0.1" not in message.payload.decode()
        assert PLAYER not in message.msg_id
    batch = messages.decode_batch(batch_msg.payload)
    assert batch.player_ids == {"1970-01": EDGE.player_id("1970-01")}
    assert batch.profile_key == EDGE.profile_key
    assert [e.seq for e in batch.events] == [1, 2]
    assert (batch.session_id, batch.shard, batch.latency_bucket) == ("s-1", "eu-1", "<50ms")
    assert (batch.envelope_id, batch.received_at) == (9, 1_000)
    assert dlq_msg.subject == messages.DLQ_SUBJECT
    entry = msgspec.json.decode(dlq_msg.payload)
    assert entry["analytics_player_id"] == EDGE.player_id("1970-01")


def test_an_opted_out_session_stores_nothing_yet_is_acked() -> None:
    ctx = context(Consent(analytics=False))
    events = [{"seq": 1, "name": "session_start", "ts": 1, "props": {}}]
    result = intake(
        frame(events), ctx, guard(ctx), LIVE, now=0.0, received_at=1, latency=None,
        edge=EDGE,
    )  # fmt: skip
    assert result.outbound == [] and result.ack.dropped == 1 and result.drops == {"opt_out": 1}


def test_refused_schema_and_malformed_events_carry_the_frame_id() -> None:
    ctx = context()
    for bad, code in ((frame([], schema="9.9.9"), ErrorCode.ANALYTICS_VERSION),
                      (frames.AnalyticsFrame(id=9, schema="1.0.0", events=msgspec.Raw(b"{}")),
                       ErrorCode.BAD_REQUEST)):  # fmt: skip
        with pytest.raises(ProtocolError) as caught:
            intake(
                bad, ctx, guard(ctx), LIVE, now=0.0, received_at=1, latency=None,
                edge=EDGE,
            )  # fmt: skip
        assert (caught.value.code, caught.value.frame_id) == (code, 9)


def test_token_bucket_allows_its_rate_with_a_burst_of_one_second() -> None:
    bucket = TokenBucket(10, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(20)) == 10
    assert not bucket.take(0.05)
    assert bucket.take(0.1)


def test_group_commit_plans_bundles_within_the_size_bound() -> None:
    from gameplay_analytics.runtime.gateway.ingest import Outbound, plan_writes

    class Job:
        def __init__(self, *msgs: Outbound) -> None:
            self.messages = list(msgs)

    def ev(n: int) -> Outbound:
        return Outbound(messages.EVENTS_SUBJECT, b'{"n":%d,"pad":"%s"}' % (n, b"x" * 81), f"id-{n}")

    dlq = Outbound(messages.DLQ_SUBJECT, b"{}", "dlq-1")
    jobs = [Job(ev(1)), Job(ev(2), dlq), Job(ev(3)), Job(ev(4))]
    writes = plan_writes(jobs, max_bytes=350)
    assert [(w.subject, w.msg_id.startswith("bundle-"), len(w.jobs)) for w in writes] == [
        (messages.DLQ_SUBJECT, False, 1),
        (messages.EVENTS_SUBJECT, True, 3),  # 3 x 97 bytes + separators fit in 350
        (messages.EVENTS_SUBJECT, False, 1),  # alone: keeps its envelope's own id
    ]
    assert writes[2].msg_id == "id-4" and writes[2].payload == ev(4).payload
    bundle = messages.split_events(writes[1].payload)
    assert bundle == [ev(1).payload, ev(2).payload, ev(3).payload]
    assert writes[1].jobs == jobs[:3] and writes[0].jobs == [jobs[1]]
    again = plan_writes(jobs, max_bytes=350)
    assert again[1].msg_id == writes[1].msg_id  # the same bundle twice is deduplicated
