"""The pure parts of privacy requests and the scan: which messages are a player's, what the
scan flags, and that its report never repeats what it found."""

from __future__ import annotations

import json
import uuid

from gameplay_analytics.runtime.privacy_scan import Finding, Needles, age_like
from gameplay_analytics.runtime.stream_erasure import PlayerMatch

PLAYER = str(uuid.uuid4())
PSEUDONYM = "ab" * 32


def test_a_message_is_the_players_by_raw_uuid_in_any_case_or_by_pseudonym() -> None:
    match = PlayerMatch(player_uuid=PLAYER.upper(), player_ids=[PSEUDONYM])
    assert match(json.dumps({"player_uuid": PLAYER.upper(), "events": []}).encode())
    assert match(json.dumps({"analytics_player_id": PSEUDONYM, "reason": "x"}).encode())
    other = str(uuid.uuid4())
    assert match(json.dumps({"player_uuid": other}).encode()) is None
    # The UUID quoted somewhere else (a prop, a detail) is not the message's player.
    assert match(json.dumps({"player_uuid": other, "detail": PLAYER}).encode()) is None
    assert match(b"not json " + PLAYER.encode()) is None
    assert PLAYER not in repr(match) and PLAYER.upper() not in repr(match)


def test_any_uuid_mode_flags_uuids_outside_the_id_columns_only() -> None:
    needles = Needles(None)
    found = list(needles.text("t", json.dumps({"props": {"enemy_id": PLAYER}})))
    assert [f.what for f in found] == ["player_uuid"]
    assert list(needles.text("log", f"request {PLAYER}", any_uuid=False)) == []
    named = Needles([PLAYER])
    assert [f.what for f in named.text("log", f"x {PLAYER.replace('-', '')} y")] == ["player_uuid"]


def test_findings_are_reported_without_the_identifier() -> None:
    finding = Finding("log:gateway.log", "ip", f"client 203.0.113.7 player {PLAYER.upper()}")
    shown = finding.redacted()
    assert "203.0.113.7" not in shown and PLAYER.upper() not in shown
    assert "<ip>" in shown and "<uuid>" in shown


def test_age_like_names() -> None:
    assert all(map(age_like, ["age", "player_age", "birthDate", "dob", "yob", "born_on"]))
    assert not any(map(age_like, ["stage", "damage", "page_id", "message_count"]))
