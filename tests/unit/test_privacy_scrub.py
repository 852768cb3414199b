"""Scrubbing keeps only the props an event's schema declares and counts what it removed."""

from __future__ import annotations

import json

import pytest

from gameplay_analytics.contract import paths
from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.privacy import Scrubber, scrub_props

SCHEMA = json.loads(
    (paths.schemas_dir() / "analytics" / "v1" / "event.schema.json").read_text(encoding="utf-8")
)


def test_scrub_props_keeps_only_allowed_keys() -> None:
    props = {"enemy_id": "orc_7", "tier": "elite", "email": "a@b.c", "ip": "81.2.69.142"}
    assert scrub_props(props, {"enemy_id", "tier"}) == {"enemy_id": "orc_7", "tier": "elite"}
    assert scrub_props(props, ()) == {}
    assert props["email"] == "a@b.c"  # the input is left alone


def test_scrubber_reads_every_event_from_the_schema() -> None:
    scrubber = Scrubber.from_schema(SCHEMA)
    for name in EVENTS:
        declared = set(SCHEMA["definitions"][name]["properties"])
        assert scrubber.allowed(name) == declared


def test_scrubber_removes_undeclared_props_and_counts_them() -> None:
    scrubber = Scrubber.from_schema(SCHEMA)
    kept = scrubber.scrub(
        "chat_message", {"length": 12, "text": "hello my number is …", "player_name": "Bob"}
    )
    assert kept == {"length": 12}
    assert scrubber.scrub("engage_enemy", {"enemy_id": "orc_7", "tier": "boss"}) == {
        "enemy_id": "orc_7",
        "tier": "boss",
    }
    assert scrubber.scrub("friend_invite", {"friend_name": "Alice"}) == {}
    assert scrubber.removed == {"chat_message": 2, "friend_invite": 1}
    assert scrubber.removed_total == 3


def test_unknown_events_keep_nothing_and_share_one_counter() -> None:
    scrubber = Scrubber.from_schema(SCHEMA)
    assert scrubber.scrub("teleport", {"x": 1, "y": 2}) == {}
    assert scrubber.scrub("anything the client made up", {"z": 3}) == {}
    assert scrubber.removed == {"_unknown": 3}


def test_nested_values_of_declared_props_are_kept_whole() -> None:
    scrubber = Scrubber({"custom": ["payload"]})
    assert scrubber.scrub("custom", {"payload": {"a": [1, 2]}}) == {"payload": {"a": [1, 2]}}
    assert scrubber.scrub("custom", None) == {}
    assert scrubber.removed_total == 0


@pytest.mark.parametrize("schema", [{}, {"definitions": {}}, {"definitions": []}])
def test_a_schema_without_definitions_is_refused(schema: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="definitions"):
        Scrubber.from_schema(schema)
