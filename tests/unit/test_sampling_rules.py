"""The designer's rules: parsing the YAML shape, clear errors, overrides and compilation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics import sampling
from gameplay_analytics.contract import paths
from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.sampling import SamplingRulesError

DEFAULT_YAML: dict[str, Any] = yaml.safe_load(
    (Path(paths.schemas_dir()) / "sampling.yml").read_text(encoding="utf-8")
)


def rules_with(**changes: Any) -> dict[str, Any]:
    """The shipped YAML with some top-level sections replaced or extended."""
    data = copy.deepcopy(DEFAULT_YAML)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def problems_of(data: object, **kwargs: Any) -> str:
    with pytest.raises(SamplingRulesError) as info:
        sampling.parse_rules(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # it goes into a one-line status condition
    assert message.startswith("invalid sampling rules: ")
    return message


def test_shipped_rules_load() -> None:
    rules = sampling.load_default_rules()
    assert rules == sampling.parse_rules(DEFAULT_YAML)
    assert rules.heartbeat_bounds == (0.01, 1.0)
    assert rules.classes["session"].exempt


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"classes": {"combat": {"rate": 1.5}}},
            "classes.combat.rate: must be between 0 and 1, got 1.5",
        ),
        ({"classes": {"combat": {"rate": -0.1}}}, "classes.combat.rate: must be between 0 and 1"),
        (
            {"classes": {"combat": {"rate": 0.5, "tiers": {"boss": 2}}}},
            "classes.combat.tiers.boss: must be between 0 and 1, got 2",
        ),
        (
            {"events": {"loot_drop": {"rate": 3}}},
            "events.loot_drop.rate: must be between 0 and 1, got 3",
        ),
        (
            {"classes": {"combat": {"rate": ".5"}}},
            "classes.combat.rate: must be a number, got '.5'",
        ),
        (
            {"classes": {"combat": {"rate": True}}},
            "classes.combat.rate: must be a number, got True",
        ),
        (
            {"classes": {"session": {"rate": 1, "exempt": "yes"}}},
            "classes.session.exempt: must be true or false",
        ),
        ({"classes": {"combat": {"rat": 0.5}}}, "classes.combat.rate: is required"),
        (
            {"classes": {"combat": {"rate": 0.5, "rat": 0.5}}},
            "classes.combat.rat: is not a known field",
        ),
        (
            {"events": {"lootdrop": {"rate": 1.0}}},
            "events: unknown event 'lootdrop' (did you mean 'loot_drop'?)",
        ),
        ({"events": {"teleport": {"rate": 1.0}}}, "events: unknown event 'teleport'"),
        (
            {"debounce_ms": {"snapshot": 10}},
            "debounce_ms: unknown event 'snapshot' (did you mean 'snapshot_size'?)",
        ),
        (
            {"debounce_ms": {"death": -5}},
            "debounce_ms.death: must be a whole number of ms ≥ 0, got -5",
        ),
        ({"debounce_ms": {"death": 2.5}}, "debounce_ms.death: must be a whole number, got 2.5"),
        ({"classes": {"fighting": {"rate": 0.1}}}, "classes: unknown sampling class 'fighting'"),
        (
            {"classes": {"heartbeat": {"rate": 0.1, "adaptive": {"min": 0.5, "max": 0.2}}}},
            "classes.heartbeat.adaptive: min 0.5 is above max 0.2",
        ),
        (
            {"classes": {"heartbeat": {"rate": 0.001, "adaptive": {"min": 0.01, "max": 1}}}},
            "classes.heartbeat: rate 0.001 is outside its adaptive bounds [0.01, 1.0]",
        ),
        (
            {"classes": {"social": {"rate": 0.5, "tiers": {"elite": 1}}}},
            "class 'social' sets tiers but none of its events has a tier",
        ),
        (
            {"events": {"loot_drop": {"tiers": {"boss": 1}}}},
            "event 'loot_drop' sets tiers but has no tier",
        ),
        (
            {"events": {"death": {"tiers": {"normal": 1}}}},
            "events.death.tiers.normal: is not a tier with its own rate",
        ),
        ({"classes": {"combat": [0.5]}}, "classes.combat: must be a mapping"),
        ({"sampling": {}}, "sampling: is not a known field"),
    ],
)
def test_validation_errors_name_the_path_and_the_fix(
    changes: dict[str, Any], expected: str
) -> None:
    assert expected in problems_of(rules_with(**changes))


def test_missing_classes_list_the_events_that_need_them() -> None:
    data = rules_with()
    del data["classes"]["heartbeat"]
    message = problems_of(data)
    assert (
        "missing class 'heartbeat' (used by client_tick, aoi_population, snapshot_size)" in message
    )


def test_every_problem_is_reported_at_once() -> None:
    data = rules_with(classes={"combat": {"rate": 2}}, events={"lootdrop": {}})
    with pytest.raises(SamplingRulesError) as info:
        sampling.parse_rules(data)
    assert len(info.value.problems) == 2
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("data", [[1, 2], "classes: {}", 3])
def test_rules_must_be_a_mapping(data: object) -> None:
    assert "rules must be a mapping" in problems_of(data)


def test_empty_sections_mean_none() -> None:
    rules = sampling.parse_rules(rules_with(events=None, debounce_ms=None))
    assert rules.events == {} and rules.debounce_ms == {}


def test_event_overrides_win_over_their_class() -> None:
    rules = sampling.parse_rules(
        rules_with(
            events={
                "loot_drop": {"rate": 1.0},
                "death": {"tiers": {"elite": 0.0}},
                "damage_taken": {"rate": 0.2, "tiers": {"boss": 0.7}},
            }
        )
    )
    compiled = sampling.compile(rules)
    assert compiled.rate_for("loot_drop", None) == 1.0
    assert compiled.rate_for("xp_gain", None) == 0.3  # same class, no override
    assert compiled.rate_for("death", {"tier": "elite"}) == 0.0  # a zero tier rate is a rate
    assert compiled.rate_for("death", {"tier": "boss"}) == 1.0  # class tier kept
    assert compiled.rate_for("damage_taken", {"tier": "normal"}) == 0.2
    assert compiled.rate_for("damage_taken", {"tier": "boss"}) == 0.7
    assert compiled.rate_for("damage_taken", {"tier": "elite"}) == 1.0


def test_a_patch_over_the_defaults_keeps_what_it_does_not_say() -> None:
    base = sampling.load_default_rules()
    rules = sampling.parse_rules(
        {"classes": {"combat": {"rate": 0.2}}, "events": {"loot_drop": {"rate": 1.0}}},
        base=base,
    )
    compiled = sampling.compile(rules)
    assert compiled.rate_for("engage_enemy", {"tier": "normal"}) == 0.2
    assert compiled.rate_for("engage_enemy", {"tier": "boss"}) == 1.0
    assert compiled.rate_for("loot_drop", None) == 1.0
    assert compiled.debounce("inventory_move") == 250
    assert sampling.parse_rules({}, base=base) == base
    assert sampling.parse_rules(None, base=base) == base
    assert "classes.combat.rate" in problems_of({"classes": {"combat": {"rate": 9}}}, base=base)
    assert "classes: must be a mapping" in problems_of({"classes": [1]}, base=base)


def test_heartbeat_rate_replaces_the_class_rate_within_bounds() -> None:
    rules = sampling.load_default_rules()
    for given_rate, expected in [(0.4, 0.4), (0.001, 0.01), (7.0, 1.0), (None, 0.1)]:
        compiled = sampling.compile(rules, heartbeat_rate=given_rate)
        for name in ("client_tick", "aoi_population", "snapshot_size"):
            assert compiled.rate_for(name, None) == expected
        assert compiled.rate_for("loot_drop", None) == 0.3
    with pytest.raises(ValueError, match="finite"):
        sampling.compile(rules, heartbeat_rate=float("nan"))


def test_a_pinned_heartbeat_event_ignores_the_controller() -> None:
    rules = sampling.parse_rules(rules_with(events={"client_tick": {"rate": 0.05}}))
    compiled = sampling.compile(rules, heartbeat_rate=0.8)
    assert compiled.rate_for("client_tick", None) == 0.05
    assert compiled.rate_for("snapshot_size", None) == 0.8


def test_a_non_adaptive_heartbeat_class_ignores_the_controller() -> None:
    rules = sampling.parse_rules(rules_with(classes={"heartbeat": {"rate": 0.2}}))
    assert rules.heartbeat_bounds is None
    assert sampling.compile(rules, heartbeat_rate=0.9).rate_for("client_tick", None) == 0.2


_rate = st.floats(0.0, 1.0)
_classes = sorted({spec.sampling_class for spec in EVENTS.values()})


@given(
    st.fixed_dictionaries({name: _rate for name in _classes}),
    st.dictionaries(st.sampled_from(sorted(EVENTS)), _rate, max_size=5),
    st.floats(0.0, 1.0),
)
def test_any_valid_rules_compile_to_every_event(
    class_rates: dict[str, float], overrides: dict[str, float], heartbeat: float
) -> None:
    data = {
        "classes": {name: {"rate": rate} for name, rate in class_rates.items()},
        "events": {name: {"rate": rate} for name, rate in overrides.items()},
    }
    compiled = sampling.compile(sampling.parse_rules(data), heartbeat_rate=heartbeat)
    assert set(compiled.names) == set(EVENTS)
    for name, spec in EVENTS.items():
        expected = overrides.get(name, class_rates[spec.sampling_class])
        assert compiled.rate_for(name, {"tier": "boss"}) == expected
    assert sampling.CompiledRules.from_wire(compiled.to_wire()) == compiled
