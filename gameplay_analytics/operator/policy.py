"""From a SamplingPolicy spec to the rules in force: overlay, compile, heartbeat bounds.

Pure: the operator calls these with what it read from the cluster and publishes the result.
"""

from __future__ import annotations

import functools
from typing import Any

from gameplay_analytics import sampling
from gameplay_analytics.operator.manifests import SamplingState
from gameplay_analytics.operator.models import BreakerSpec, HeartbeatSpec, SamplingPolicySpec

__all__ = [
    "default_rules",
    "heartbeat_config",
    "parse_policy",
    "policy_rules",
    "sampling_state",
]


@functools.cache
def default_rules() -> sampling.SamplingRules:
    """schemas/sampling.yml, read once: a policy is an overlay on it."""
    return sampling.load_default_rules()


def parse_policy(raw_spec: Any) -> SamplingPolicySpec:
    """The spec as a model; raises pydantic.ValidationError (a CRD-valid spec never does)."""
    return SamplingPolicySpec.model_validate(raw_spec or {})


def policy_rules(spec: SamplingPolicySpec | None) -> sampling.SamplingRules:
    """The policy's rules over the defaults; raises SamplingRulesError naming each problem,
    e.g. an event the taxonomy does not know (the CRD schema cannot check names)."""
    if spec is None:
        return default_rules()
    overlay = spec.rules.model_dump(exclude_none=True)
    return sampling.parse_rules(overlay, base=default_rules())


def heartbeat_config(
    rules: sampling.SamplingRules, spec: HeartbeatSpec | None = None
) -> sampling.HeartbeatConfig | None:
    """The controller's config, or None when the heartbeat class is not adaptive (pinned)."""
    bounds = rules.heartbeat_bounds
    if bounds is None or bounds[0] <= 0.0:
        return None
    spec = spec or HeartbeatSpec()
    return sampling.HeartbeatConfig(
        min_rate=bounds[0],
        max_rate=bounds[1],
        cpu_target=spec.cpu_target,
        combat_threshold=spec.combat_threshold,
        combat_hold_s=float(spec.combat_hold_seconds),
        step_factor=spec.step_factor,
    )


def sampling_state(
    spec: SamplingPolicySpec | None, *, heartbeat_rate: float | None = None
) -> SamplingState:
    """Compiled rules with the controller's heartbeat rate applied; raises SamplingRulesError."""
    rules = policy_rules(spec)
    compiled = sampling.compile(rules, heartbeat_rate=heartbeat_rate)
    return SamplingState(rules=compiled, breaker=spec.breaker if spec else BreakerSpec())
