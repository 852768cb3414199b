"""Sampling: the deterministic keep/drop hash, the rules and their compiled form, and the
adaptive heartbeat controller and circuit breaker that move rates under load — pure logic.
"""

from gameplay_analytics.sampling.breaker import BreakerConfig, CircuitBreaker
from gameplay_analytics.sampling.compiled import WIRE_VERSION, CompiledRules, EventRule
from gameplay_analytics.sampling.hashing import bucket, canonical_uuid, keep, threshold
from gameplay_analytics.sampling.heartbeat import (
    HeartbeatConfig,
    HeartbeatState,
    LoadSignals,
    step,
)
from gameplay_analytics.sampling.rules import (
    COHORT_PATTERN,
    HEARTBEAT_CLASS,
    AdaptiveBounds,
    ClassRule,
    EventOverride,
    SamplingRules,
    SamplingRulesError,
    TierRates,
    compile,
    load_default_rules,
    parse_rules,
)

__all__ = [
    "COHORT_PATTERN",
    "HEARTBEAT_CLASS",
    "WIRE_VERSION",
    "AdaptiveBounds",
    "BreakerConfig",
    "CircuitBreaker",
    "ClassRule",
    "CompiledRules",
    "EventOverride",
    "EventRule",
    "HeartbeatConfig",
    "HeartbeatState",
    "LoadSignals",
    "SamplingRules",
    "SamplingRulesError",
    "TierRates",
    "bucket",
    "canonical_uuid",
    "compile",
    "keep",
    "load_default_rules",
    "parse_rules",
    "step",
    "threshold",
]
