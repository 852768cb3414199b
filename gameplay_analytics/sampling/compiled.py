"""Compiled sampling rules: one entry per event, the form SDKs and servers receive.

The wire form travels in `welcome` and `sampling` frames and through NATS KV; its SHA-256 is
the `sampling_version` every component reports, so equal rules always hash equal.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from gameplay_analytics.sampling import hashing

__all__ = ["WIRE_VERSION", "CompiledRules", "EventRule", "thinnable"]

WIRE_VERSION = 1


@dataclasses.dataclass(frozen=True, slots=True)
class EventRule:
    """How one event is sampled: its rate, its tier rates (elite, boss), exemption and cohort.

    `exempt` events ignore the overload multiplier: session lifecycle and combat outcomes are
    what the reports are built on, so they are never thinned to save the gateway. See
    `thinnable` for the whole rule of what the multiplier may touch.
    `cohort` is the sampling hash key (PROTOCOL.md §2): events that share it keep the same
    players. Empty means the event's own name, the meaning of a wire form that predates
    cohorts, so rules an older operator published still decide as they did.
    """

    rate: float
    tiers: tuple[tuple[str, float], ...] = ()
    exempt: bool = False
    cohort: str = ""

    def tier_rate(self, tier: object) -> float | None:
        """The rate for `props.tier`, or None when that tier has no rate of its own."""
        for name, rate in self.tiers:
            if name == tier:
                return rate
        return None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"rate": self.rate, "exempt": self.exempt}
        if self.tiers:
            wire["tiers"] = dict(self.tiers)
        if self.cohort:
            wire["cohort"] = self.cohort
        return wire


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledRules:
    """Sampling rules expanded per event name, so that a client needs no taxonomy.

    Build it with `gameplay_analytics.sampling.compile()` or `CompiledRules.from_wire()`.
    Entries are sorted on construction, so equality, hashing and `version` do not depend on
    the order the events were listed in.
    """

    events: tuple[tuple[str, EventRule], ...]
    debounce_ms: tuple[tuple[str, int], ...] = ()
    _index: dict[str, EventRule] = dataclasses.field(init=False, repr=False, compare=False)
    _version: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: canonicalise through object.__setattr__, once, at construction.
        object.__setattr__(self, "events", tuple(sorted(self.events)))
        object.__setattr__(self, "debounce_ms", tuple(sorted(self.debounce_ms)))
        object.__setattr__(self, "_index", dict(self.events))
        canonical = json.dumps(self.to_wire(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        object.__setattr__(self, "_version", f"sha256:{digest}")

    def __repr__(self) -> str:
        return f"CompiledRules(version={self._version!r}, events={len(self.events)})"

    @classmethod
    def build(
        cls, events: Mapping[str, EventRule], *, debounce_ms: Mapping[str, int] | None = None
    ) -> CompiledRules:
        """Compiled rules from plain mappings (zero debounce intervals are left out)."""
        debounce = {name: ms for name, ms in (debounce_ms or {}).items() if ms > 0}
        return cls(events=tuple(events.items()), debounce_ms=tuple(debounce.items()))

    @property
    def version(self) -> str:
        """`sha256:<hex>` of the canonical JSON wire form (sorted keys, no spaces)."""
        return self._version

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.events)

    def rule(self, name: str) -> EventRule | None:
        return self._index.get(name)

    def cohort_for(self, name: str) -> str:
        """The sampling hash key of an event: its rule's cohort, else the event's name."""
        rule = self._index.get(name)
        return rule.cohort if rule is not None and rule.cohort else name

    def debounce(self, name: str) -> int:
        """The SDK's minimum interval between two events of this name, in ms (0: none)."""
        return dict(self.debounce_ms).get(name, 0)

    def rate_for(
        self, name: str, props: Mapping[str, object] | None = None, *, multiplier: float = 1.0
    ) -> float:
        """The rate an event is sampled at, in [0, 1].

        The tier rate applies when the event has one for `props["tier"]`; the multiplier scales
        only what `thinnable` allows. A name the rules do not know is never kept (0.0): the
        gateway refuses it anyway, and a client must not send what it cannot classify.
        """
        rule = self._index.get(name)
        if rule is None:
            return 0.0
        rate = rule.rate
        if rule.tiers and props is not None:
            tier_rate = rule.tier_rate(props.get("tier"))
            if tier_rate is not None:
                rate = tier_rate
        if thinnable(rule, rate):
            rate *= multiplier
        return _clamp_rate(rate)

    def should_keep(
        self,
        player_uuid: str | uuid.UUID,
        name: str,
        *,
        props: Mapping[str, object] | None = None,
        multiplier: float = 1.0,
    ) -> tuple[bool, float]:
        """Whether to keep the event, and the rate decided at (stored as `sample_rate`)."""
        rate = self.rate_for(name, props, multiplier=multiplier)
        return hashing.keep(player_uuid, self.cohort_for(name), rate=rate), rate

    def to_wire(self) -> dict[str, Any]:
        """The JSON form of PROTOCOL.md §1 `welcome.sampling`."""
        return {
            "v": WIRE_VERSION,
            "events": {name: rule.to_wire() for name, rule in self.events},
            "debounce_ms": dict(self.debounce_ms),
        }

    @classmethod
    def from_wire(cls, data: object) -> CompiledRules:
        """Parse a wire form; unknown keys are ignored (newer servers), wrong types are not.

        Raises ValueError naming the offending path, e.g. `events.death.rate`.
        """
        top = _mapping(data, "sampling rules")
        version = top.get("v")
        if type(version) is not int or version != WIRE_VERSION:
            raise ValueError(
                f"sampling rules: unsupported wire version {version!r}; this reader "
                f"understands v={WIRE_VERSION}"
            )
        events = {
            _name(name, "events"): _event_from_wire(entry, f"events.{name}")
            for name, entry in _mapping(top.get("events"), "events").items()
        }
        raw_debounce = top.get("debounce_ms", {})
        debounce = {
            _name(name, "debounce_ms"): _interval(ms, f"debounce_ms.{name}")
            for name, ms in _mapping(raw_debounce, "debounce_ms").items()
        }
        return cls.build(events, debounce_ms=debounce)


def thinnable(rule: EventRule, rate: float) -> bool:
    """Whether the overload multiplier may scale an event decided at `rate` under `rule`.

    Critical events are kept at every multiplier (PROTOCOL.md §2): exempt classes (session
    lifecycle, combat outcomes) and every rate of 1.0, which is how the rules say "all of
    them": combat at the boss and elite tiers, `skill_rank_up`. The multiplier thins only
    what is already a sample (rate < 1.0): normal-tier combat, commodities, social, heartbeat.
    The TypeScript SDK (client/src/sampling.ts) applies the same rule.
    """
    return not rule.exempt and rate < 1.0


def _clamp_rate(rate: float) -> float:
    # NaN would survive min/max as 1.0 and keep everything; a broken rate keeps nothing.
    if math.isnan(rate):
        return 0.0
    return min(1.0, max(0.0, rate))


def _event_from_wire(entry: object, where: str) -> EventRule:
    fields = _mapping(entry, where)
    if "rate" not in fields:
        raise ValueError(f"sampling rules: {where}.rate is missing")
    rate = _rate(fields["rate"], f"{where}.rate")
    exempt = fields.get("exempt", False)
    if not isinstance(exempt, bool):
        raise ValueError(f"sampling rules: {where}.exempt must be true or false, got {exempt!r}")
    tiers = {
        _name(tier, f"{where}.tiers"): _rate(value, f"{where}.tiers.{tier}")
        for tier, value in _mapping(fields.get("tiers", {}), f"{where}.tiers").items()
    }
    cohort = fields.get("cohort", "")
    if not isinstance(cohort, str):
        raise ValueError(f"sampling rules: {where}.cohort must be a name, got {cohort!r}")
    return EventRule(rate=rate, tiers=tuple(sorted(tiers.items())), exempt=exempt, cohort=cohort)


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError(f"sampling rules: {where} must be an object, got {type(value).__name__}")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"sampling rules: {where} has a key that is not a name: {value!r}")
    return value


def _rate(value: object, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"sampling rules: {where} must be a number in [0, 1], got {value!r}")
    return float(value)


def _interval(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"sampling rules: {where} must be a whole number of ms ≥ 0, got {value!r}")
    return value
