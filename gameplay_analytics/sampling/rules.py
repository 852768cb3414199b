"""The designer's sampling rules (schemas/sampling.yml, SamplingPolicy spec.rules) and compile.

`parse_rules` turns hand-written YAML into `SamplingRules` with errors a designer can act on;
`compile` expands them per taxonomy event into the `CompiledRules` every component reads.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from gameplay_analytics.contract import paths, taxonomy
from gameplay_analytics.sampling.compiled import CompiledRules, EventRule

__all__ = [
    "COHORT_PATTERN",
    "HEARTBEAT_CLASS",
    "AdaptiveBounds",
    "ClassRule",
    "EventOverride",
    "SamplingRules",
    "SamplingRulesError",
    "TierRates",
    "compile",
    "load_default_rules",
    "parse_rules",
]

HEARTBEAT_CLASS = "heartbeat"
"""The class whose rate the operator's adaptive controller moves (`heartbeat_rate`)."""

Rate = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
Interval = Annotated[int, Field(strict=True, ge=0)]
COHORT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""A sampling cohort key (PROTOCOL.md §2): lowercase, hashed as `<uuid>:<cohort>` by every SDK."""
Cohort = Annotated[str, Field(strict=True, pattern=COHORT_PATTERN)]


class SamplingRulesError(ValueError):
    """Rules a designer wrote that cannot be compiled; `problems` lists each one by path.

    The message is a single line so that it fits a SamplingPolicy's `Ready` condition.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid sampling rules: " + "; ".join(self.problems))


class _Form(BaseModel):
    # Forbid unknown keys: a typo such as `rat: 0.5` must fail, not silently keep the default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRates(_Form):
    """Rates for `props.tier`; `normal` has none because it uses the event's own rate."""

    elite: Rate | None = None
    boss: Rate | None = None

    def as_dict(self) -> dict[str, float]:
        pairs = (("elite", self.elite), ("boss", self.boss))
        return {tier: rate for tier, rate in pairs if rate is not None}


class AdaptiveBounds(_Form):
    """The range the operator's heartbeat controller may move a class's rate within."""

    min: Rate
    max: Rate

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> AdaptiveBounds:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ClassRule(_Form):
    """A sampling class: the default rate of every event that names it in the taxonomy.

    `cohort` is the sampling hash key of its events; unset, it is the class's own name, so a
    player is in or out of all the class's events together (loot, crafting and XP link up).
    """

    rate: Rate
    tiers: TierRates | None = None
    exempt: Annotated[bool, Field(strict=True)] = False
    adaptive: AdaptiveBounds | None = None
    cohort: Cohort | None = None

    @pydantic.model_validator(mode="after")
    def _rate_within_bounds(self) -> ClassRule:
        if self.adaptive and not self.adaptive.min <= self.rate <= self.adaptive.max:
            raise ValueError(
                f"rate {self.rate} is outside its adaptive bounds "
                f"[{self.adaptive.min}, {self.adaptive.max}]"
            )
        return self


class EventOverride(_Form):
    """A per-event rule; what it sets wins over the event's class (its cohort too)."""

    rate: Rate | None = None
    tiers: TierRates | None = None
    cohort: Cohort | None = None


class SamplingRules(_Form):
    """The whole rule set, in the shape of schemas/sampling.yml."""

    classes: dict[str, ClassRule]
    events: dict[str, EventOverride] = Field(default_factory=dict)
    debounce_ms: dict[str, Interval] = Field(default_factory=dict)

    @pydantic.field_validator("events", "debounce_ms", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        # `events:` with nothing under it is YAML null; a designer means "no overrides".
        return {} if value is None else value

    @pydantic.field_validator("classes")
    @classmethod
    def _classes_match_taxonomy(cls, classes: dict[str, ClassRule]) -> dict[str, ClassRule]:
        problems = []
        used = _events_by_class()
        for name in sorted(classes.keys() - used.keys()):
            hint = _suggest(name, used) or f" (the taxonomy's classes: {', '.join(sorted(used))})"
            problems.append(f"unknown sampling class {name!r}{hint}")
        for name in sorted(used.keys() - classes.keys()):
            problems.append(f"missing class {name!r} (used by {', '.join(used[name])})")
        for name, rule in sorted(classes.items()):
            tiered = any(taxonomy.EVENTS[e].tiered for e in used.get(name, ()))
            if rule.tiers and rule.tiers.as_dict() and not tiered:
                problems.append(f"class {name!r} sets tiers but none of its events has a tier")
        if problems:
            raise ValueError("; ".join(problems))
        return classes

    @pydantic.field_validator("events")
    @classmethod
    def _overrides_name_events(cls, events: dict[str, EventOverride]) -> dict[str, EventOverride]:
        problems = [_unknown_event(name) for name in events if name not in taxonomy.EVENTS]
        problems += [
            f"event {name!r} sets tiers but has no tier"
            for name, rule in sorted(events.items())
            if name in taxonomy.EVENTS
            and rule.tiers
            and rule.tiers.as_dict()
            and not taxonomy.EVENTS[name].tiered
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return events

    @pydantic.field_validator("debounce_ms")
    @classmethod
    def _debounce_names_events(cls, debounce: dict[str, int]) -> dict[str, int]:
        problems = [_unknown_event(name) for name in debounce if name not in taxonomy.EVENTS]
        if problems:
            raise ValueError("; ".join(problems))
        return debounce

    @property
    def heartbeat_bounds(self) -> tuple[float, float] | None:
        """The heartbeat class's adaptive (min, max), or None when it is not adaptive."""
        rule = self.classes.get(HEARTBEAT_CLASS)
        if rule is None or rule.adaptive is None:
            return None
        return (rule.adaptive.min, rule.adaptive.max)


def parse_rules(data: object, *, base: SamplingRules | None = None) -> SamplingRules:
    """Validate hand-written rules, optionally as a patch over `base` (usually the defaults).

    With a base, a class entry is merged one level deep (writing `combat: {rate: 0.2}` keeps
    the base's combat tiers), while `events` and `debounce_ms` entries replace the base's entry
    of the same name. Raises SamplingRulesError listing every problem with its path.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SamplingRulesError(
            [f"rules must be a mapping of classes, events and debounce_ms, not {_kind(data)}"]
        )
    if base is not None:
        data = _overlay(base, data)
    try:
        return SamplingRules.model_validate(data)
    except pydantic.ValidationError as exc:
        raise SamplingRulesError(_describe(exc)) from None


def load_default_rules() -> SamplingRules:
    """The shipped default rules, `schemas/sampling.yml` (the one file this package reads)."""
    path = paths.schemas_dir() / "sampling.yml"
    with path.open(encoding="utf-8") as stream:
        return parse_rules(yaml.safe_load(stream))


def compile(rules: SamplingRules, *, heartbeat_rate: float | None = None) -> CompiledRules:
    """Expand the rules per taxonomy event: class rate and cohort, then the event's override.

    `heartbeat_rate` (the adaptive controller's output) replaces the heartbeat class rate,
    clamped to its adaptive bounds; it is ignored when the class is not adaptive, because a
    designer who removed the bounds has pinned the rate. A per-event override still wins.
    """
    bounds = rules.heartbeat_bounds
    if heartbeat_rate is not None and not math.isfinite(heartbeat_rate):
        raise ValueError(f"heartbeat_rate must be a finite number, got {heartbeat_rate!r}")
    events: dict[str, EventRule] = {}
    for name, spec in taxonomy.EVENTS.items():
        klass = rules.classes[spec.sampling_class]
        rate = klass.rate
        if spec.sampling_class == HEARTBEAT_CLASS and heartbeat_rate is not None and bounds:
            rate = min(bounds[1], max(bounds[0], heartbeat_rate))
        tiers = klass.tiers.as_dict() if klass.tiers else {}
        cohort = klass.cohort or spec.sampling_class
        override = rules.events.get(name)
        if override is not None:
            rate = override.rate if override.rate is not None else rate
            tiers.update(override.tiers.as_dict() if override.tiers else {})
            cohort = override.cohort or cohort
        events[name] = EventRule(
            rate=float(rate),
            tiers=tuple(sorted(tiers.items())) if spec.tiered else (),
            exempt=klass.exempt,
            cohort=cohort,
        )
    return CompiledRules.build(events, debounce_ms=rules.debounce_ms)


def _events_by_class() -> dict[str, tuple[str, ...]]:
    used: dict[str, list[str]] = {}
    for name, spec in taxonomy.EVENTS.items():
        used.setdefault(spec.sampling_class, []).append(name)
    return {klass: tuple(names) for klass, names in used.items()}


def _unknown_event(name: str) -> str:
    return f"unknown event {name!r}{_suggest(name, taxonomy.EVENTS)}"


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def _overlay(base: SamplingRules, patch: Mapping[Any, Any]) -> dict[str, Any]:
    merged = base.model_dump(exclude_none=True)
    for key, value in patch.items():
        if key == "classes" and isinstance(value, Mapping):
            classes = merged["classes"]
            for name, entry in value.items():
                current = classes.get(name)
                mergeable = isinstance(current, Mapping) and isinstance(entry, Mapping)
                classes[name] = {**current, **entry} if mergeable else entry
        elif key in {"events", "debounce_ms"} and isinstance(value, Mapping):
            merged[key] = {**merged[key], **value}
        elif value is None and key in merged:
            continue  # an empty section (YAML null) keeps the base's
        else:
            # Wrong types and unknown keys pass through so validation reports them by path.
            merged[key] = value
    return merged


_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "finite_number"}
_TYPE_ERRORS = {
    "float_type": "must be a number",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "string_type": "must be a name",
    "string_pattern_mismatch": "must be a lowercase name (a-z, 0-9, _ . -; at most 64)",
    "model_type": "must be a mapping",
}


def _describe(exc: pydantic.ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "rules"
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        if kind in _RANGE_ERRORS:
            message = (
                "must be a whole number of ms ≥ 0"
                if where.startswith("debounce_ms")
                else "must be between 0 and 1"
            )
        elif kind == "extra_forbidden" and "tiers" in error["loc"][:-1]:
            message = "is not a tier with its own rate (elite, boss; normal uses the event rate)"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        elif kind in _TYPE_ERRORS:
            message = _TYPE_ERRORS[kind]
        elif kind == "missing":
            message = "is required"
        scalar = not isinstance(error.get("input"), Mapping | list)
        if kind not in {"value_error", "missing", "extra_forbidden"} and scalar:
            message += f", got {error.get('input')!r}"
        problems.append(f"{where}: {message}")
    return problems
