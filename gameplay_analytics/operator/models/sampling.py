"""The SamplingPolicy spec: rule overrides, the heartbeat controller and the breaker.

The rules keep the designer's snake_case keys of schemas/sampling.yml (one shape everywhere).
Every field is optional here because a policy is an overlay on the default rules; the
sampling core checks names against the taxonomy and reports problems in the status.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from gameplay_analytics.operator.models.base import CelChecked, Spec, cel_rules
from gameplay_analytics.sampling.rules import COHORT_PATTERN

__all__ = [
    "AdaptiveBoundsForm",
    "BreakerSpec",
    "ClassRuleForm",
    "EventOverrideForm",
    "HeartbeatSpec",
    "SamplingPolicySpec",
    "SamplingRulesForm",
    "TierRatesForm",
]


class _Rules(CelChecked):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRatesForm(_Rules):
    elite: float | None = Field(default=None, ge=0, le=1)
    boss: float | None = Field(default=None, ge=0, le=1)


class AdaptiveBoundsForm(_Rules):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(("self.min <= self.max", "adaptive min must not exceed max"))
    )

    min: float = Field(ge=0, le=1)
    max: float = Field(ge=0, le=1)


class ClassRuleForm(_Rules):
    rate: float | None = Field(default=None, ge=0, le=1)
    tiers: TierRatesForm | None = None
    exempt: bool | None = None
    adaptive: AdaptiveBoundsForm | None = None
    cohort: str | None = Field(default=None, pattern=COHORT_PATTERN)


class EventOverrideForm(_Rules):
    rate: float | None = Field(default=None, ge=0, le=1)
    tiers: TierRatesForm | None = None
    cohort: str | None = Field(default=None, pattern=COHORT_PATTERN)


class SamplingRulesForm(_Rules):
    classes: dict[str, ClassRuleForm] = Field(default_factory=dict)
    events: dict[str, EventOverrideForm] = Field(default_factory=dict)
    debounce_ms: dict[str, int] = Field(default_factory=dict)


class HeartbeatSpec(Spec):
    """The adaptive controller's thresholds; its bounds are `rules.classes.heartbeat.adaptive`."""

    cpu_target: float = Field(
        default=0.65, gt=0, le=1, description="gateway CPU share that sheds load"
    )
    combat_threshold: float = Field(
        default=0.85, gt=0, le=1, description="share of players in combat"
    )
    combat_hold_seconds: int = Field(default=120, ge=0, le=86400)
    step_factor: float = Field(default=2.0, gt=1, le=10)


class BreakerSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            ("self.recoverBelow <= self.threshold", "recoverBelow must not exceed threshold")
        )
    )

    threshold: float = Field(default=0.8, gt=0, le=1, description="queue fill that trips")
    hold_seconds: int = Field(default=30, ge=0, le=3600)
    recover_below: float = Field(default=0.5, ge=0, le=1)
    recover_hold_seconds: int = Field(default=10, ge=0, le=3600)
    step: float = Field(default=0.5, gt=0, lt=1, description="multiplier per trip")
    floor: float = Field(default=0.125, gt=0, le=1, description="lowest multiplier")


class SamplingPolicySpec(Spec):
    rules: SamplingRulesForm = Field(
        default_factory=SamplingRulesForm,
        description="overrides of schemas/sampling.yml, same shape",
    )
    heartbeat: HeartbeatSpec = Field(default_factory=HeartbeatSpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
