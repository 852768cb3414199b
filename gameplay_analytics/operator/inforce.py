"""The sampling rules in force for a pipeline: its SamplingPolicy as read from the cluster,
its last good spec when the current one is invalid, the defaults when there is none."""

from __future__ import annotations

from typing import Any

import pydantic

from gameplay_analytics import sampling
from gameplay_analytics.operator import kube, policy
from gameplay_analytics.operator.manifests import Pipeline, SamplingState
from gameplay_analytics.operator.models import SamplingPolicySpec

__all__ = ["policy_in_force", "sampling_for"]


async def sampling_for(
    pipeline: Pipeline, *, heartbeat_rate: float | None
) -> tuple[SamplingState, str | None]:
    """The rules in force for a pipeline, and a problem to report (or None).

    An invalid policy keeps its last good spec (status.appliedSpec); a missing one means the
    default rules, reported, because a dangling reference is usually a typo.
    """
    ref = pipeline.spec.sampling_policy_ref
    if ref is None:
        return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), None
    body = await kube.get(kind="SamplingPolicy", namespace=pipeline.namespace, name=ref.name)
    if body is None:
        problem = f"SamplingPolicy {ref.name!r} not found: the default rules are in force"
        return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), problem
    for candidate in (body.get("spec"), (body.get("status") or {}).get("appliedSpec")):
        if candidate is None:
            continue
        try:
            spec = policy.parse_policy(candidate)
            return policy.sampling_state(spec, heartbeat_rate=heartbeat_rate), None
        except (pydantic.ValidationError, sampling.SamplingRulesError):
            continue
    return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), None


async def policy_in_force(
    pipeline: Pipeline,
) -> tuple[dict[str, Any] | None, SamplingPolicySpec | None, sampling.SamplingRules]:
    """(the SamplingPolicy object or None, its applied spec or None, the rules) for the
    heartbeat controller: the applied spec (last good) first, then the current one."""
    ref = pipeline.spec.sampling_policy_ref
    if ref is None:
        return None, None, policy.default_rules()
    body = await kube.get(kind="SamplingPolicy", namespace=pipeline.namespace, name=ref.name)
    if body is None:
        return None, None, policy.default_rules()
    try:
        spec = policy.parse_policy(
            (body.get("status") or {}).get("appliedSpec") or body.get("spec")
        )
        return body, spec, policy.policy_rules(spec)
    except (pydantic.ValidationError, sampling.SamplingRulesError):
        return body, None, policy.default_rules()
