"""The operator's pure decisions: policy overlay, schema gate, conditions."""

from __future__ import annotations

import copy

import pytest

from gameplay_analytics import sampling
from gameplay_analytics.contract.registry import released_schemas
from gameplay_analytics.operator import conditions, policy
from gameplay_analytics.operator.models import SamplingPolicySpec
from gameplay_analytics.operator.schemagate import review

V1 = released_schemas()["1.0.0"]


def bumped(version: str, **props: dict[str, object]) -> dict[str, object]:
    doc = copy.deepcopy(V1)
    doc["version"] = version
    for name, schema in props.items():
        doc["definitions"]["loot_drop"]["properties"][name] = schema
    return doc


def test_empty_policy_is_the_default_rules() -> None:
    state = policy.sampling_state(SamplingPolicySpec())
    assert state.rules == sampling.compile(sampling.load_default_rules())


def test_policy_is_an_overlay_that_keeps_unmentioned_fields() -> None:
    spec = SamplingPolicySpec.model_validate({"rules": {"classes": {"combat": {"rate": 0.2}}}})
    rules = policy.sampling_state(spec).rules
    assert rules.rate_for("engage_enemy") == 0.2
    assert rules.rate_for("engage_enemy", {"tier": "boss"}) == 1.0  # default tiers kept


def test_policy_naming_an_unknown_class_is_refused_with_a_hint() -> None:
    spec = SamplingPolicySpec.model_validate({"rules": {"classes": {"combatt": {"rate": 0.2}}}})
    with pytest.raises(sampling.SamplingRulesError, match="did you mean 'combat'"):
        policy.sampling_state(spec)


def test_heartbeat_rate_is_clamped_to_the_policy_bounds() -> None:
    spec = SamplingPolicySpec.model_validate(
        {"rules": {"classes": {"heartbeat": {"rate": 0.1, "adaptive": {"min": 0.05, "max": 0.2}}}}}
    )
    assert policy.sampling_state(spec, heartbeat_rate=0.9).rules.rate_for("client_tick") == 0.2
    config = policy.heartbeat_config(policy.policy_rules(spec), spec.heartbeat)
    assert config is not None and (config.min_rate, config.max_rate) == (0.05, 0.2)


def test_pinned_heartbeat_has_no_controller() -> None:
    rules = policy.default_rules().model_copy(
        update={
            "classes": {**policy.default_rules().classes, "heartbeat": sampling.ClassRule(rate=0.1)}
        }
    )
    assert policy.heartbeat_config(rules) is None


def test_schema_gate_accepts_an_optional_field_in_a_minor() -> None:
    assert review("1.1.0", bumped("1.1.0", source={"type": "string"}), {"1.0.0": V1}) == []


def test_schema_gate_rejects_a_breaking_minor_and_names_the_field() -> None:
    doc = bumped("1.1.0")
    doc["definitions"]["loot_drop"]["required"] = ["item_id", "rarity", "source"]
    doc["definitions"]["loot_drop"]["properties"]["source"] = {"type": "string"}
    problems = review("1.1.0", doc, {"1.0.0": V1})
    assert problems and "loot_drop.props.source" in problems[0] and "major bump" in problems[0]


def test_schema_gate_lets_a_new_major_break_and_ignores_other_majors() -> None:
    doc = bumped("2.0.0")
    del doc["definitions"]["loot_drop"]
    assert review("2.0.0", doc, {"1.0.0": V1}) == []


def test_schema_gate_checks_the_document_says_its_version() -> None:
    assert review("1.1.0", bumped("1.2.0"), {}) == [
        "the document says version 1.2.0, the resource 1.1.0"
    ]
    assert review("1.1.0", None, {}) == ["no schema document: set spec.schema or spec.schemaFrom"]


def test_schema_gate_checks_a_version_slotted_below_a_newer_one() -> None:
    newer = bumped("1.2.0", source={"type": "string"})
    older = bumped("1.1.0", source={"type": "integer"})
    problems = review("1.1.0", older, {"1.0.0": V1, "1.2.0": newer})
    assert any("against the newer 1.2.0" in p for p in problems)


def test_component_readiness_from_deployment_status() -> None:
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2},
    }
    assert not conditions.component_from_deployment("gateway", deployment).ready  # stale rollout
    deployment["status"]["observedGeneration"] = 2
    assert conditions.component_from_deployment("gateway", deployment).ready
    assert not conditions.component_from_deployment("gateway", None).ready


def test_conditions_and_transition_times() -> None:
    waiting = [conditions.Component("gateway", 2, 1)]
    first = conditions.merge_conditions(
        None, conditions.pipeline_conditions(waiting), generation=3, at="t1"
    )
    assert {c["type"]: c["status"] for c in first} == {
        "Ready": "False",
        "Progressing": "True",
        "Degraded": "False",
    }
    assert all(c["observedGeneration"] == 3 for c in first)
    same = conditions.merge_conditions(
        first, conditions.pipeline_conditions(waiting), generation=3, at="t2"
    )
    assert {c["lastTransitionTime"] for c in same} == {"t1"}
    ready = [conditions.Component("gateway", 2, 2)]
    flipped = conditions.merge_conditions(
        same,
        conditions.pipeline_conditions(ready, degraded="Prometheus down"),
        generation=3,
        at="t3",
    )
    by_type = {c["type"]: c for c in flipped}
    assert by_type["Ready"]["status"] == "True" and by_type["Ready"]["lastTransitionTime"] == "t3"
    assert by_type["Degraded"]["reason"] == "LoadSignalsUnavailable"
    failed = conditions.pipeline_conditions(ready, problem="cannot connect to NATS")
    assert failed[0].reason == "ReconcileFailed" and failed[0].status is False
