"""Compiled rules: per-event rates, tiers, multiplier, exemption, wire form and version."""

from __future__ import annotations

import json
import math
import random
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics import sampling
from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.sampling import CompiledRules, EventRule

DEFAULTS = sampling.compile(sampling.load_default_rules())


def test_defaults_follow_the_protocol_table() -> None:
    rate = DEFAULTS.rate_for
    assert rate("session_start", None) == 1.0
    assert rate("engage_enemy", {"tier": "normal"}) == 0.5
    assert rate("engage_enemy", {"tier": "elite"}) == 1.0
    assert rate("death", {"tier": "boss"}) == 1.0
    assert rate("encounter_end", {"tier": "normal"}) == 1.0
    assert rate("skill_rank_up", None) == 1.0
    assert rate("loot_drop", None) == 0.3
    assert rate("chat_message", None) == 0.5
    assert rate("client_tick", None) == 0.1
    assert DEFAULTS.debounce("inventory_move") == 250
    assert DEFAULTS.debounce("death") == 0


def test_every_taxonomy_event_is_in_the_wire_form() -> None:
    wire = DEFAULTS.to_wire()
    assert wire["v"] == 1
    assert set(wire["events"]) == set(EVENTS)
    for name, entry in wire["events"].items():
        assert isinstance(entry["rate"], float)
        assert isinstance(entry["exempt"], bool)
        assert ("tiers" in entry) == EVENTS[name].tiered
    assert wire["events"]["engage_enemy"]["tiers"] == {"elite": 1.0, "boss": 1.0}
    assert wire["events"]["session_end"]["exempt"] is True
    assert wire["debounce_ms"] == {
        "inventory_move": 250,
        "aoi_population": 1000,
        "snapshot_size": 1000,
    }
    json.dumps(wire, allow_nan=False)  # plain JSON, nothing a non-Python SDK cannot read


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (None, 0.5),
        ({}, 0.5),
        ({"tier": "normal"}, 0.5),
        ({"tier": "elite"}, 1.0),
        ({"tier": "boss"}, 1.0),
        ({"tier": "mythic"}, 0.5),
        ({"tier": ["boss"]}, 0.5),
    ],
)
def test_tier_rates(props: dict[str, Any] | None, expected: float) -> None:
    assert DEFAULTS.rate_for("ability_cast", props) == expected


def test_tier_is_ignored_on_untiered_events() -> None:
    assert DEFAULTS.rate_for("loot_drop", {"tier": "boss"}) == 0.3


def test_multiplier_scales_only_sampled_events() -> None:
    assert DEFAULTS.rate_for("loot_drop", None, multiplier=0.5) == 0.15
    assert DEFAULTS.rate_for("engage_enemy", {"tier": "normal"}, multiplier=0.25) == 0.125
    assert DEFAULTS.rate_for("engage_enemy", {"tier": "boss"}, multiplier=0.25) == 1.0
    assert DEFAULTS.rate_for("skill_rank_up", None, multiplier=0.25) == 1.0
    assert DEFAULTS.rate_for("session_crash", None, multiplier=0.125) == 1.0
    assert DEFAULTS.rate_for("encounter_end", None, multiplier=0.125) == 1.0
    assert DEFAULTS.rate_for("loot_drop", None, multiplier=10.0) == 1.0
    assert DEFAULTS.rate_for("loot_drop", None, multiplier=-1.0) == 0.0
    assert DEFAULTS.rate_for("loot_drop", None, multiplier=math.nan) == 0.0


def test_unknown_events_are_never_kept() -> None:
    assert DEFAULTS.rate_for("teleport", {"tier": "boss"}) == 0.0
    assert DEFAULTS.should_keep(uuid.uuid4(), "teleport") == (False, 0.0)


def test_should_keep_reports_the_rate_it_decided_at() -> None:
    rng = random.Random(3)
    players = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(10_000)]
    decisions = [
        DEFAULTS.should_keep(p, "engage_enemy", props={"tier": "normal"}, multiplier=0.5)
        for p in players
    ]
    assert {rate for _, rate in decisions} == {0.25}
    kept = sum(keep for keep, _ in decisions)
    sigma = math.sqrt(len(players) * 0.25 * 0.75)
    assert abs(kept - len(players) * 0.25) < 5 * sigma
    assert all(
        DEFAULTS.should_keep(p, "session_start", multiplier=0.125) == (True, 1.0) for p in players
    )


@given(st.uuids(), st.sampled_from(sorted(EVENTS)), st.sampled_from(["normal", "elite", "boss"]))
def test_decisions_are_stable_per_player_and_event(player: uuid.UUID, name: str, tier: str) -> None:
    props = {"tier": tier}
    first = DEFAULTS.should_keep(player, name, props=props)
    assert DEFAULTS.should_keep(str(player).upper(), name, props=dict(props)) == first
    again = CompiledRules.from_wire(DEFAULTS.to_wire())
    assert again.should_keep(player, name, props=props) == first


def test_wire_round_trip_keeps_rules_and_version() -> None:
    again = CompiledRules.from_wire(json.loads(json.dumps(DEFAULTS.to_wire())))
    assert again == DEFAULTS
    assert hash(again) == hash(DEFAULTS)
    assert again.version == DEFAULTS.version
    assert again.to_wire() == DEFAULTS.to_wire()


def test_version_is_the_sha256_of_canonical_json() -> None:
    import hashlib

    canonical = json.dumps(DEFAULTS.to_wire(), sort_keys=True, separators=(",", ":"))
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert DEFAULTS.version == expected


def test_version_ignores_order_but_not_content() -> None:
    rules = {"b": EventRule(rate=0.5), "a": EventRule(rate=1.0, exempt=True)}
    one = CompiledRules.build(rules, debounce_ms={"b": 5, "a": 0})
    other = CompiledRules.build(dict(reversed(list(rules.items()))), debounce_ms={"b": 5})
    assert one == other and one.version == other.version
    changed = CompiledRules.build({**rules, "b": EventRule(rate=0.25)}, debounce_ms={"b": 5})
    assert changed.version != one.version
    debounced = CompiledRules.build(rules, debounce_ms={"b": 6})
    assert debounced.version != one.version
    exempted = CompiledRules.build({**rules, "b": EventRule(rate=0.5, exempt=True)})
    assert exempted.version != CompiledRules.build(rules).version


def test_version_moves_with_the_heartbeat_rate() -> None:
    rules = sampling.load_default_rules()
    assert sampling.compile(rules, heartbeat_rate=0.1).version == DEFAULTS.version
    assert sampling.compile(rules, heartbeat_rate=0.2).version != DEFAULTS.version


def test_compiled_rules_are_hashable_and_frozen() -> None:
    assert len({DEFAULTS, CompiledRules.from_wire(DEFAULTS.to_wire())}) == 1
    with pytest.raises(AttributeError):
        DEFAULTS.events = ()  # type: ignore[misc]
    assert "sha256:" in repr(DEFAULTS)


def test_from_wire_tolerates_unknown_keys() -> None:
    wire = DEFAULTS.to_wire()
    wire["future"] = {"anything": [1, 2]}
    wire["events"]["death"]["weight"] = 3
    wire["events"]["new_event_from_a_newer_server"] = {"rate": 0.2, "exempt": False}
    parsed = CompiledRules.from_wire(wire)
    assert parsed.rate_for("death", {"tier": "boss"}) == 1.0
    assert parsed.rate_for("new_event_from_a_newer_server", None) == 0.2


def test_from_wire_defaults_exempt_and_debounce() -> None:
    parsed = CompiledRules.from_wire({"v": 1, "events": {"death": {"rate": 1}}})
    assert parsed.rule("death") == EventRule(rate=1.0)
    assert parsed.debounce_ms == ()


def _with(path: list[str], value: object) -> dict[str, Any]:
    wire = DEFAULTS.to_wire()
    target = wire
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return wire


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ([], "sampling rules must be an object"),
        ({"events": {}}, "unsupported wire version None"),
        ({"v": 2, "events": {}}, "unsupported wire version 2"),
        ({"v": True, "events": {}}, "unsupported wire version True"),
        ({"v": 1}, "events must be an object"),
        (_with(["events", "death", "rate"], "0.5"), "events.death.rate must be a number in [0, 1]"),
        (_with(["events", "death", "rate"], True), "events.death.rate must be a number"),
        (_with(["events", "death", "rate"], 1.5), "events.death.rate must be a number in [0, 1]"),
        (_with(["events", "death", "rate"], math.nan), "events.death.rate"),
        (_with(["events", "death", "exempt"], "no"), "events.death.exempt must be true or false"),
        (_with(["events", "death", "tiers"], [1.0]), "events.death.tiers must be an object"),
        (_with(["events", "death", "tiers", "boss"], 2), "events.death.tiers.boss must be"),
        (_with(["events", "death"], {"exempt": True}), "events.death.rate is missing"),
        (_with(["debounce_ms", "snapshot_size"], 1.5), "debounce_ms.snapshot_size must be"),
        (_with(["debounce_ms", "snapshot_size"], -1), "debounce_ms.snapshot_size must be"),
        (_with(["debounce_ms"], None), "debounce_ms must be an object"),
    ],
)
def test_from_wire_rejects_bad_types_clearly(wire: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        CompiledRules.from_wire(wire)
    assert message in str(info.value)


# -- cohorts (PROTOCOL.md §2): the hash key is the rule's cohort, by default its class --------


def test_default_cohort_is_the_event_class() -> None:
    for name, spec in EVENTS.items():
        assert DEFAULTS.cohort_for(name) == spec.sampling_class
        assert DEFAULTS.to_wire()["events"][name]["cohort"] == spec.sampling_class
    assert DEFAULTS.cohort_for("no_such_event") == "no_such_event"


def test_commodity_events_keep_the_same_players() -> None:
    rng = random.Random(10)
    players = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(2_000)]
    commodity = [n for n, spec in EVENTS.items() if spec.sampling_class == "commodity"]
    assert {"xp_gain", "loot_drop", "craft_result"} <= set(commodity)
    kept = 0
    for player in players:
        decisions = {DEFAULTS.should_keep(player, name)[0] for name in commodity}
        assert len(decisions) == 1, "a player is in or out of every commodity event together"
        kept += decisions.pop()
    sigma = math.sqrt(len(players) * 0.3 * 0.7)
    assert abs(kept - len(players) * 0.3) < 5 * sigma


def test_cohort_overrides_compile_and_travel_on_the_wire() -> None:
    rules = sampling.parse_rules(
        {
            "classes": {"social": {"cohort": "community"}},
            "events": {"loot_drop": {"cohort": "loot"}},
        },
        base=sampling.load_default_rules(),
    )
    compiled = sampling.compile(rules)
    assert compiled.cohort_for("chat_message") == "community"
    assert compiled.cohort_for("loot_drop") == "loot"
    assert compiled.cohort_for("xp_gain") == "commodity"
    assert CompiledRules.from_wire(json.loads(json.dumps(compiled.to_wire()))) == compiled
    assert compiled.version != DEFAULTS.version
    player = "9b2f6a3e-1c4d-4f5a-8b7c-2d1e0f9a8b7c"
    assert compiled.should_keep(player, "loot_drop") == (
        sampling.keep(player, "loot", rate=0.3),
        0.3,
    )


def test_a_wire_form_without_cohorts_keeps_its_old_meaning() -> None:
    # Rules an older operator published hashed on the event name; they still do.
    compiled = CompiledRules.from_wire({"v": 1, "events": {"xp_gain": {"rate": 0.3}}})
    assert compiled.cohort_for("xp_gain") == "xp_gain"
    assert "cohort" not in compiled.to_wire()["events"]["xp_gain"]
    with pytest.raises(ValueError, match=r"events\.xp_gain\.cohort"):
        CompiledRules.from_wire({"v": 1, "events": {"xp_gain": {"rate": 0.3, "cohort": 7}}})


@pytest.mark.parametrize("cohort", ["", "Commodity", "a b", "x" * 65, 3])
def test_bad_cohort_names_are_refused_with_their_path(cohort: object) -> None:
    with pytest.raises(sampling.SamplingRulesError, match=r"classes\.social\.cohort"):
        sampling.parse_rules(
            {"classes": {"social": {"cohort": cohort}}}, base=sampling.load_default_rules()
        )
