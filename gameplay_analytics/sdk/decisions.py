"""What becomes of a tracked event before it is buffered: consent, the sampling rules (the
gateway's live ones once welcomed) and debounce, decided once per (name, tier) and cached until
the rules, the multiplier or the client's standing change."""

from __future__ import annotations

import dataclasses
import time

from gameplay_analytics.contract import taxonomy
from gameplay_analytics.privacy.consent import Consent, allows
from gameplay_analytics.sampling.compiled import CompiledRules

__all__ = ["Decision", "EventGate", "default_rules"]

_default_rules: CompiledRules | None = None


def default_rules() -> CompiledRules:
    """The shipped rules, used until the gateway's `welcome` brings the live ones."""
    global _default_rules
    if _default_rules is None:
        from gameplay_analytics import sampling

        _default_rules = sampling.compile(sampling.load_default_rules())
    return _default_rules


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    keep: bool
    priority: int
    debounce_ns: int
    reason: str = ""  # why not kept: sampled, consent, unknown, version


class EventGate:
    """One player's admission decisions; `decide()` is on the `track()` hot path."""

    __slots__ = ("_consent", "_decisions", "_last_at", "_player", "multiplier", "refused", "rules")

    def __init__(self, player_uuid: str, consent: Consent) -> None:
        self._player = player_uuid
        self._consent = consent
        self.rules = default_rules()
        self.multiplier = 1.0
        self.refused = False  # the gateway refused our schema version: nothing is kept
        self._decisions: dict[tuple[str, object], Decision] = {}
        self._last_at: dict[str, int] = {}

    def decide(self, name: str, tier: object) -> Decision:
        key = (name, tier)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = self._decide(name, tier)
        return decision

    def debounced(self, name: str, debounce_ns: int) -> bool:
        """True when `name` was kept less than `debounce_ns` ago (else it counts as kept now)."""
        now = time.monotonic_ns()
        last = self._last_at.get(name)
        if last is not None and now - last < debounce_ns:
            return True
        self._last_at[name] = now
        return False

    def set_rules(self, rules: CompiledRules, multiplier: float) -> bool:
        """Adopt the gateway's rules and multiplier; True when anything changed."""
        if rules == self.rules and multiplier == self.multiplier:
            return False
        self.rules, self.multiplier = rules, multiplier
        self._decisions.clear()
        return True

    def refuse(self) -> None:
        """The gateway refused the client's schema version: keep nothing from now on."""
        self.refused = True
        self._decisions.clear()

    def _decide(self, name: str, tier: object) -> Decision:
        if self.refused:
            return Decision(False, 0, 0, "version")
        spec = taxonomy.spec_for(name)
        if spec is None:
            return Decision(False, 0, 0, "unknown")
        if not allows(self._consent, spec):
            return Decision(False, 0, 0, "consent")  # opt-out: not even buffered
        props = {"tier": tier} if spec.tiered and tier is not None else None
        keep, _ = self.rules.should_keep(
            self._player, name, props=props, multiplier=self.multiplier
        )
        debounce_ns = self.rules.debounce(name) * 1_000_000
        return Decision(keep, int(spec.priority), debounce_ns, "" if keep else "sampled")
