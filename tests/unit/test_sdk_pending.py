"""The SDK's crash-proof queue: unacked lifecycle events survive a restart, unchanged, and are
forgotten once acknowledged; a session left open is reported as a crash (pure, no network)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.taxonomy import Priority
from gameplay_analytics.sdk import AnalyticsClient
from gameplay_analytics.sdk.client import default_rules
from gameplay_analytics.sdk.pending import PendingEvents

PLAYER = "8a3b1f9e-7c1d-4e5f-9a2b-0c1d2e3f4a5b"


def make_client(state: Path, guid: uuid.UUID, **kwargs: object) -> AnalyticsClient:
    return AnalyticsClient(
        player_uuid=PLAYER,
        client_guid=guid,
        token="t",
        state_dir=state,
        **kwargs,  # type: ignore[arg-type]
    )


def welcome(client: AnalyticsClient) -> None:
    client.on_connected()
    rules = default_rules()
    welcome = frames.Welcome(session_id="s", sampling=rules.to_wire(), sampling_version="v")
    assert client.on_frame(frames.encode(welcome))


def sent_events(client: AnalyticsClient) -> tuple[int, list[dict[str, object]]]:
    [frame] = client.poll(now=1e9)
    envelope = json.loads(frame)
    return envelope["id"], envelope["events"]


def ack(client: AnalyticsClient, envelope_id: int, accepted: int) -> None:
    assert client.on_frame(frames.encode(frames.Ack(id=envelope_id, accepted=accepted)))


def test_unacked_lifecycle_events_come_back_after_a_restart_unchanged(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    first = make_client(tmp_path, guid)
    first.track("session_start")
    first.track("engage_enemy", enemy_id="orc", tier="boss")  # not lifecycle: not persisted
    first.track("session_end", reason="logout")
    welcome(first)
    _, events = sent_events(first)  # sent, never acked: then the process dies
    lifecycle = [e for e in events if str(e["name"]).startswith("session")]

    second = make_client(tmp_path, guid)
    assert second.stats.recovered == 2
    assert not second.recovered_crash  # the session had ended
    welcome(second)
    envelope_id, resent = sent_events(second)
    assert resent == lifecycle  # same seqs, same bytes: the server's dedup stores each once
    ack(second, envelope_id, accepted=2)
    second.poll(now=2e9)
    assert make_client(tmp_path, guid).stats.recovered == 0


def test_acked_events_are_forgotten(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    client = make_client(tmp_path, guid)
    client.track("session_start")
    welcome(client)
    envelope_id, _ = sent_events(client)
    ack(client, envelope_id, accepted=1)
    client.poll(now=2e9)
    restarted = make_client(tmp_path, guid)
    assert restarted.stats.recovered == 0
    assert restarted.recovered_crash  # started, never ended: the run crashed


def test_a_session_left_open_is_reported_once_as_a_crash(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    make_client(tmp_path, guid).track("session_start")
    second = make_client(tmp_path, guid)
    assert second.recovered_crash
    welcome(second)
    _, events = sent_events(second)
    names = [e["name"] for e in events]
    assert names.count("session_crash") == 1 and names.count("session_start") == 1
    crash = next(e for e in events if e["name"] == "session_crash")
    assert crash["props"] == {"reason": "unclean_exit"}
    third = make_client(tmp_path, guid)  # the crash is pending, not a new crash
    assert not third.recovered_crash and third.stats.recovered == 2


def test_report_crash_can_be_left_to_the_game(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    make_client(tmp_path, guid).track("session_start")
    second = make_client(tmp_path, guid, report_crash=False)
    assert second.recovered_crash and second.stats.buffered == 0


def test_everything_mode_is_bounded_and_never_drops_lifecycle(tmp_path: Path) -> None:
    path = tmp_path / "pending.json"
    pending = PendingEvents(path, everything=True, cap_bytes=2000)
    pending.add(1, int(Priority.LIFECYCLE), b'{"seq":1,"name":"session_start"}')
    for seq in range(2, 200):
        pending.add(seq, int(Priority.GAMEPLAY), b'{"seq":%d,"name":"engage_enemy"}' % seq)
    pending.flush()
    assert path.stat().st_size < 2 * 2000  # the events' bytes, JSON-escaped, plus framing
    recovered = PendingEvents(path).recovered()
    assert recovered[0] == (int(Priority.LIFECYCLE), b'{"seq":1,"name":"session_start"}')
    seqs = [json.loads(e)["seq"] for _, e in recovered]
    assert seqs == sorted(seqs) and seqs[-1] == 199  # the newest kept, the oldest evicted


def test_a_damaged_file_recovers_nothing_and_does_not_raise(tmp_path: Path) -> None:
    guid = uuid.uuid4()
    (tmp_path / f"pending-{guid}.json").write_text('{"events": [[1, 5, ')
    client = make_client(tmp_path, guid)
    assert client.stats.recovered == 0 and not client.recovered_crash
    client.track("session_start")
    assert client.stats.errors == 0
