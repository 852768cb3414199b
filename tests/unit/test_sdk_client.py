"""The SDK core without a network: sampling, debounce, opt-out, buffer cap, envelopes, resends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.taxonomy import Priority
from gameplay_analytics.sampling import hashing
from gameplay_analytics.sdk import AnalyticsClient, PriorityBuffer, SeqCounter
from gameplay_analytics.sdk.client import default_rules

PLAYER = "8a3b1f9e-7c1d-4e5f-9a2b-0c1d2e3f4a5b"


def make_client(tmp_path: Path | None = None, **kwargs: Any) -> AnalyticsClient:
    kwargs.setdefault("client_guid", uuid.uuid4())
    return AnalyticsClient(player_uuid=PLAYER, token="t", state_dir=tmp_path, **kwargs)


def welcome(client: AnalyticsClient, *, multiplier: float = 1.0, rate_hz: int = 10) -> None:
    client.on_connected()
    rules = default_rules()
    frame = frames.Welcome(
        session_id="s1",
        sampling=rules.to_wire(),
        sampling_version=rules.version,
        max_rate_hz=rate_hz,
        multiplier=multiplier,
    )
    assert client.on_frame(frames.encode(frame))


def envelope(frame: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(frame)
    assert data["type"] == "analytics"
    return data


def test_hello_carries_identity_and_consent() -> None:
    client = make_client(consent={"analytics": True, "social": False}, build="b1", platform="linux")
    hello = frames.parse_client_frame(client.on_connected())
    assert isinstance(hello, frames.Hello)
    assert str(hello.client_guid) == client.client_guid
    assert hello.token == "t" and hello.schema == "1.0.0" and hello.build == "b1"
    assert hello.consent == {"analytics": True, "social": False}


def test_track_never_raises_and_counts_what_it_refused() -> None:
    client = make_client()
    client.track("launch_nukes", power=9000)  # not in the taxonomy
    client.track("session_start", weird=object())  # not JSON-encodable
    client.track("session_start", blob="x" * 100_000)  # too large for an envelope
    assert client.buffered_events == 0
    assert client.stats.refused == 2 and client.stats.errors == 1


def test_sampling_follows_the_shared_hash() -> None:
    client = make_client()
    rules = default_rules()
    for i in range(200):
        client.track("xp_gain", amount=i, source="quest")
    kept = hashing.keep(PLAYER, rules.cohort_for("xp_gain"), rate=rules.rate_for("xp_gain"))
    assert rules.cohort_for("xp_gain") == "commodity"
    # The decision is per player and cohort: all 200 kept or none.
    assert client.buffered_events == (200 if kept else 0)
    assert client.stats.sampled_out == (0 if kept else 200)


def test_tier_rates_and_lifecycle_always_kept() -> None:
    client = make_client()
    client.track("session_start")
    client.track("engage_enemy", enemy_id="orc_1", tier="boss")
    client.track("encounter_end", encounter_id="e1", tier="normal", outcome="win")
    assert client.buffered_events == 3


def test_opt_out_buffers_nothing() -> None:
    client = make_client(consent={"analytics": False})
    client.track("session_start")
    client.track("engage_enemy", enemy_id="orc_1", tier="boss")
    assert client.buffered_events == 0 and client.stats.opted_out == 2


def test_social_consent_gates_social_events_only() -> None:
    client = make_client(consent={"social": False})
    client.track("party_create", party_size=2)
    client.track("chat_message", length=3)
    client.track("session_start")
    assert client.buffered_events == 1 and client.stats.opted_out == 2


def test_debounce_keeps_one_event_per_interval() -> None:
    client = make_client()
    # snapshot_size is debounced 1000 ms; force the heartbeat class in with multiplier rules.
    wire = default_rules().to_wire()
    wire["events"]["snapshot_size"]["rate"] = 1.0
    client.on_frame(
        msgspec.json.encode({"type": "sampling", "sampling": wire, "sampling_version": "x"})
    )
    for _ in range(50):
        client.track("snapshot_size", bytes=10)
    assert client.buffered_events == 1 and client.stats.debounced == 49


def test_sampling_frame_multiplier_thins_only_sampled_events() -> None:
    client = make_client()
    welcome(client, multiplier=0.0)
    client.track("engage_enemy", enemy_id="orc", tier="normal")  # 0.5 * 0.0
    client.track("loot_drop", item_id="i", rarity="common")  # 0.3 * 0.0
    client.track("engage_enemy", enemy_id="orc", tier="boss")  # 1.0: critical
    client.track("skill_rank_up", skill="s", rank=2)  # 1.0: critical
    client.track("session_start")  # exempt
    assert client.buffered_events == 3


def test_envelope_is_a_valid_frame_with_increasing_seqs() -> None:
    client = make_client()
    welcome(client)
    for i in range(5):
        client.track("encounter_end", encounter_id=f"e{i}", tier="boss", outcome="win")
    [frame] = client.poll(now=100.0)
    parsed = frames.parse_client_frame(frame)
    assert isinstance(parsed, frames.AnalyticsFrame) and parsed.schema == "1.0.0"
    seqs = [e["seq"] for e in envelope(frame)["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


def test_poll_respects_the_rate_limit_and_max_events() -> None:
    client = make_client()
    welcome(client, rate_hz=10)
    client.max_events = 3
    for i in range(10):
        client.track("encounter_end", encounter_id=f"e{i}", tier="boss", outcome="win")
    sent = []
    now = 100.0
    while now < 101.0:
        sent += client.poll(now=now)
        now += 0.01
    assert 1 <= len(sent) <= 10  # at most max_rate_hz per second
    assert all(len(envelope(f)["events"]) <= 3 for f in sent)


def test_nothing_is_sent_before_welcome() -> None:
    client = make_client()
    client.track("session_start")
    assert client.poll(now=100.0) == []
    client.on_connected()
    assert client.poll(now=100.0) == []


def test_unacked_envelopes_are_resent_unchanged_after_reconnect() -> None:
    client = make_client()
    welcome(client)
    client.track("session_start")
    [first] = client.poll(now=100.0)
    client.on_disconnected()
    client.track("session_end", reason="logout")
    welcome(client)
    [again] = client.poll(now=200.0)
    assert again == first  # same bytes: same id, same events, same Nats-Msg-Id
    [second] = client.poll(now=201.0)
    assert envelope(second)["id"] == envelope(first)["id"] + 1
    client.on_frame(frames.encode(frames.Ack(id=envelope(first)["id"], accepted=1)))
    client.on_frame(frames.encode(frames.Ack(id=envelope(second)["id"], accepted=1)))
    assert client.idle and client.stats.events_acked == 2


def test_backpressure_keeps_the_envelope_and_waits() -> None:
    client = make_client(clock=lambda: 100.0)
    welcome(client)
    client.track("session_start")
    [frame] = client.poll(now=100.0)
    ident = envelope(frame)["id"]
    refusal = frames.Error(code="backpressure", detail="full", id=ident, retry_after_ms=2000)
    client.on_frame(frames.encode(refusal))
    assert client.poll(now=101.9) == []  # still inside retry_after_ms
    assert client.poll(now=103.1) == [frame]  # after retry_after_ms × a jitter below 1.5
    assert client.stats.backpressure == 1


def test_backpressure_retries_are_spread_so_clients_do_not_return_together() -> None:
    waits = set()
    for _ in range(20):
        client = make_client(clock=lambda: 100.0)
        welcome(client)
        client.track("session_start")
        [frame] = client.poll(now=100.0)
        refusal = frames.Error(code="backpressure", detail="full", id=envelope(frame)["id"],
                               retry_after_ms=1000)  # fmt: skip
        client.on_frame(frames.encode(refusal))
        resend = next(t / 100 for t in range(10_000, 10_200) if client.poll(now=t / 100))
        assert 101.0 <= resend <= 101.51
        waits.add(resend)
    assert len(waits) > 5


def test_refused_again_before_an_ack_waits_twice_as_long_until_an_ack() -> None:
    """Each refusal not offset by an ack doubles the wait (2×, 4×, 8× the hint, then 8×), so
    clients of an overloaded gateway stop coming back faster than it takes envelopes; acks
    bring the wait back down, one doubling each."""
    now = [100.0]
    client = make_client(clock=lambda: now[0])
    welcome(client)

    def refuse_and_wait(frame: str, hint_s: float) -> tuple[str, float]:
        """Refuse `frame`; the resend and the wait before it, in hints (jitter below 1.5)."""
        refusal = frames.Error(code="backpressure", detail="full", id=envelope(frame)["id"],
                               retry_after_ms=int(hint_s * 1000))  # fmt: skip
        client.on_frame(frames.encode(refusal))
        refused_at = now[0]
        while not (sent := client.poll(now=now[0])):
            now[0] += 0.005
        return sent[0], (now[0] - refused_at) / hint_s

    client.track("session_start")
    [frame] = client.poll(now=now[0])
    waits = []
    for _ in range(5):
        frame, wait = refuse_and_wait(frame, 0.1)
        waits.append(wait)
    for wait, doubled in zip(waits, (1, 2, 4, 8, 8), strict=True):
        assert doubled <= wait < doubled * 1.5 + 0.1, waits
    client.on_frame(frames.encode(frames.Ack(id=envelope(frame)["id"], accepted=1)))
    for _ in range(5):  # five taken: the five refusals are offset
        now[0] += 1
        client.track("session_end", reason="logout")
        [frame] = client.poll(now=now[0])
        client.on_frame(frames.encode(frames.Ack(id=envelope(frame)["id"], accepted=1)))
    now[0] += 1
    client.track("session_end", reason="logout")
    [frame] = client.poll(now=now[0])
    _, wait = refuse_and_wait(frame, 0.1)
    assert 1 <= wait < 1.6, wait  # back to the hint


def test_envelopes_on_the_wire_refused_together_count_as_one_refusal() -> None:
    """A gateway too busy to reply in time refuses every envelope a client had on the wire;
    they were sent before the client knew, so the wait doubles once for them, not once each."""
    now = [100.0]
    client = make_client(clock=lambda: now[0])
    welcome(client)
    sent = []
    for _ in range(4):
        client.track("session_end", reason="logout")
        now[0] += 0.11
        sent += client.poll(now=now[0])
    assert len(sent) == 4

    def refuse(frame: bytes) -> None:
        refusal = frames.Error(code="backpressure", detail="full", id=envelope(frame)["id"],
                               retry_after_ms=100)  # fmt: skip
        client.on_frame(frames.encode(refusal))

    def wait_in_hints() -> tuple[bytes, float]:
        start = now[0]
        while not (out := client.poll(now=now[0])):
            now[0] += 0.005
        return out[0], (now[0] - start) / 0.1

    for frame in sent:
        refuse(frame)
    resend, first = wait_in_hints()
    assert 1 <= first < 1.6, first  # the hint, not 8× it
    refuse(resend)
    _, second = wait_in_hints()
    assert 2 <= second < 3.1, second  # refused after the hold: doubled once


def test_new_envelopes_wait_for_the_flush_interval_unless_one_is_full() -> None:
    client = make_client(clock=lambda: 100.0)
    welcome(client)
    client.track("session_start")
    assert len(client.poll(now=100.0)) == 1
    client.track("reconnect", attempt=1)  # lifecycle: never sampled out
    assert client.poll(now=100.05) == []  # the protocol's 10 Hz
    assert len(client.poll(now=100.11)) == 1
    client.max_events = 3
    for _ in range(3):
        client.track("session_end", reason="logout")
    assert len(client.poll(now=100.22)) == 1  # a full envelope goes at once (rate limit only)


def test_a_transport_polling_as_told_sends_at_the_protocols_rate() -> None:
    now = [100.0]
    client = make_client(clock=lambda: now[0])
    welcome(client)
    assert client.poll_delay(0.05) == 0.05  # nothing buffered: the transport's own period
    sent = 0
    while now[0] < 110.0:
        client.track("reconnect", attempt=1)  # tracked all the time, as a busy game does
        for frame in client.poll():
            sent += 1
            ident, events = envelope(frame)["id"], len(envelope(frame)["events"])
            client.on_frame(frames.encode(frames.Ack(id=ident, accepted=events)))
        delay = client.poll_delay(0.05)
        assert 0 < delay <= 0.05
        now[0] += delay
    # 1/0.05-polling alone sent a new envelope every third tick (6.7 Hz): the 10 Hz flush
    # needs 100 ms, the rate limit 105 ms. Woken when due, it keeps just under 10 Hz.
    assert 9 * 10 <= sent <= 10 * 10


def test_rate_limited_is_retried_later() -> None:
    client = make_client(clock=lambda: 100.0)
    welcome(client)
    client.track("session_start")
    [frame] = client.poll(now=100.0)
    client.on_frame(
        frames.encode(frames.Error(code="rate_limited", detail="slow", id=envelope(frame)["id"]))
    )
    assert client.poll(now=100.5) == []
    assert client.poll(now=101.5) == [frame]


def test_analytics_version_stops_sending_and_tracking() -> None:
    client = make_client()
    welcome(client)
    client.on_frame(frames.encode(frames.Error(code="analytics_version", detail="no")))
    client.track("session_start")
    assert client.poll(now=100.0) == [] and client.version_refused == "no"
    assert client.buffered_events == 0


def test_bad_request_drops_the_envelope() -> None:
    client = make_client()
    welcome(client)
    client.track("session_start")
    [frame] = client.poll(now=100.0)
    client.on_frame(
        frames.encode(frames.Error(code="bad_request", detail="x", id=envelope(frame)["id"]))
    )
    assert client.idle and client.stats.envelopes_refused == 1


def test_unknown_frames_are_left_to_the_game() -> None:
    client = make_client()
    assert client.on_frame(b'{"type": "world_state", "x": 1}') is False
    assert client.on_frame(b"not json") is False


def test_buffer_drops_lowest_priority_first_never_lifecycle() -> None:
    buffer = PriorityBuffer(cap_bytes=1000)
    for _ in range(10):
        buffer.push(Priority.LIFECYCLE, b"L" * 50)
    for _ in range(10):
        buffer.push(Priority.GAMEPLAY, b"G" * 40)
    for _ in range(10):
        buffer.push(Priority.HEARTBEAT, b"H" * 30)
    assert buffer.size <= 1000
    assert buffer.dropped[Priority.HEARTBEAT] == 7 and buffer.dropped[Priority.GAMEPLAY] == 0
    for _ in range(30):
        buffer.push(Priority.LIFECYCLE, b"L" * 50)
    assert buffer.dropped[Priority.LIFECYCLE] == 0
    assert buffer.counts()[Priority.LIFECYCLE] == 40  # over the cap: lifecycle is never dropped
    assert Priority.GAMEPLAY not in buffer.counts()


def test_buffer_take_highest_priority_first_within_limits() -> None:
    buffer = PriorityBuffer()
    buffer.push(Priority.HEARTBEAT, b"h1")
    buffer.push(Priority.LIFECYCLE, b"l1")
    buffer.push(Priority.GAMEPLAY, b"g1")
    assert buffer.take(max_events=2, max_bytes=1000) == [b"l1", b"g1"]
    assert buffer.take(max_events=10, max_bytes=1000) == [b"h1"]
    assert buffer.size == 0 and len(buffer) == 0


def test_buffer_cap_counts_unacked_envelopes() -> None:
    client = make_client(buffer_cap_bytes=4096)
    welcome(client)
    for i in range(20):
        client.track("encounter_end", encounter_id=f"e{i}", tier="boss", outcome="win")
    assert client.poll(now=100.0)
    for i in range(200):
        client.track("engage_enemy", enemy_id=f"o{i}", tier="boss")
    assert client.buffered_bytes + client._outbox.buffer.reserved <= 4096
    assert client.stats.overflow["gameplay"] > 0


def test_seq_counter_survives_restart(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    first = SeqCounter(guid, state_dir=tmp_path, block=8)
    seen = [first.next() for _ in range(20)]
    again = SeqCounter(guid, state_dir=tmp_path, block=8)  # a restart, after a "crash"
    later = [again.next() for _ in range(5)]
    assert seen == sorted(set(seen)) and min(later) > max(seen)
    assert not list(tmp_path.glob(".seq-*"))  # no temp file left behind


def test_seq_counter_per_client_guid(tmp_path: Path) -> None:
    a, b = (
        SeqCounter(uuid.uuid4(), state_dir=tmp_path),
        SeqCounter(uuid.uuid4(), state_dir=tmp_path),
    )
    assert a.next() == 0 and b.next() == 0
    assert len(list(tmp_path.glob("seq-*.json"))) == 2


def test_client_seqs_rise_across_restarts(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    one = make_client(tmp_path, client_guid=guid)
    welcome(one)
    one.track("session_start")
    [frame] = one.poll(now=100.0)
    two = make_client(tmp_path, client_guid=guid, report_crash=False)
    welcome(two)
    two.track("session_start")
    [frame2] = two.poll(now=100.0)
    [first] = envelope(frame)["events"]
    recovered, second = envelope(frame2)["events"]  # the unacked one comes back, unchanged
    assert recovered == first
    assert second["seq"] > first["seq"]


@pytest.mark.parametrize("garbage", [b"", b"{}", b'{"type": "ack"}', b"\xff\xfe"])
def test_malformed_replies_are_ignored(garbage: bytes) -> None:
    client = make_client()
    assert client.on_frame(garbage) is False


def test_telemetry_goes_out_at_most_once_a_second_with_the_latest_values() -> None:
    client = make_client()
    welcome(client)
    client.telemetry(40, 1000)
    client.telemetry(48, 1834)
    assert [json.loads(f) for f in client.poll(now=100.0)] == [
        {"type": "telemetry", "rtt_ms": 48.0, "snapshot_bytes": 1834}
    ]
    client.telemetry(float("nan"), 1900)
    assert client.poll(now=100.5) == []
    [frame] = client.poll(now=101.1)
    assert frames.parse_client_frame(frame) == frames.Telemetry(rtt_ms=None, snapshot_bytes=1900)
    assert client.stats.telemetry_sent == 2


def test_telemetry_is_withheld_under_opt_out() -> None:
    client = make_client(consent={"analytics": False})
    welcome(client)
    client.telemetry(48, 1834)
    assert client.poll(now=100.0) == []


def test_a_welcome_with_unreadable_rules_still_lets_the_client_send() -> None:
    client = make_client()
    client.on_connected()
    welcome = frames.Welcome(session_id="s", sampling={"v": 99}, sampling_version="future")
    assert client.on_frame(frames.encode(welcome))
    assert client.welcomed and client.stats.errors == 1
    client.track("session_start")
    assert len(client.poll(now=100.0)) == 1
