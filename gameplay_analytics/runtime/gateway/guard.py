"""The server-side sampling guard and consent gate of one session (PROTOCOL.md §2).

The same deterministic rule as the SDK: a client that sampled correctly loses nothing here,
one that did not is corrected, and every kept event carries the rate it was kept at.
"""

from __future__ import annotations

from gameplay_analytics.contract import taxonomy
from gameplay_analytics.contract.errors import DropReason
from gameplay_analytics.privacy.consent import Consent, allows
from gameplay_analytics.sampling import hashing
from gameplay_analytics.sampling.compiled import CompiledRules

__all__ = ["SamplingGuard"]


class SamplingGuard:
    """Decides keep/drop per event for one player under one consent.

    Rules and multiplier change at runtime (hot reload, circuit breaker). A client applies a
    change only when the `sampling` frame reaches it, so for `grace_s` after a change the
    guard keeps an event only if both the old and the new rules keep it, at the lower rate:
    whatever rate the client sampled at, the stored events are then exactly the sample of the
    rate they carry. Decisions are cached per (event, tier): the hash depends on nothing else.
    """

    __slots__ = ("_cache", "_consent", "_multiplier", "_player", "_previous", "_rules", "_until")

    def __init__(
        self, *, player_uuid: str, consent: Consent, rules: CompiledRules, multiplier: float
    ) -> None:
        self._player = hashing.canonical_uuid(player_uuid)
        self._consent = consent
        self._rules, self._multiplier = rules, multiplier
        self._previous: tuple[CompiledRules, float] | None = None
        self._until = 0.0
        self._cache: dict[tuple[str, object], tuple[DropReason | None, float]] = {}

    @property
    def opted_out(self) -> bool:
        return not self._consent.analytics

    def update(
        self, rules: CompiledRules, multiplier: float, *, now: float, grace_s: float
    ) -> None:
        """Switch to new rules/multiplier; the old ones still bound rates for `grace_s`."""
        if rules == self._rules and multiplier == self._multiplier:
            return
        self._previous = (self._rules, self._multiplier)
        self._until = now + grace_s
        self._rules, self._multiplier = rules, multiplier
        self._cache.clear()

    def cohort(self, name: str) -> str:
        """The cohort key an event is decided by, carried in the JetStream message so the
        aggregator re-checks the very decision made here, whatever rules it holds."""
        return self._rules.cohort_for(name)

    def decide(self, name: str, tier: object, now: float) -> tuple[DropReason | None, float]:
        """(drop reason or None to keep, sample rate) for one valid event."""
        if self._previous is not None and now >= self._until:
            self._previous = None
            self._cache.clear()
        key = (name, tier)
        found = self._cache.get(key)
        if found is None:
            found = self._decide(name, tier)
            self._cache[key] = found
        return found

    def _decide(self, name: str, tier: object) -> tuple[DropReason | None, float]:
        if not self._consent.analytics:
            return DropReason.OPT_OUT, 0.0
        spec = taxonomy.spec_for(name)
        if spec is not None and not allows(self._consent, spec):
            return DropReason.CONSENT, 0.0
        props = {"tier": tier} if tier is not None else None
        rate = self._rules.rate_for(name, props, multiplier=self._multiplier)
        if self._previous is not None:
            old_rules, old_multiplier = self._previous
            rate = min(rate, old_rules.rate_for(name, props, multiplier=old_multiplier))
        if not hashing.keep(self._player, self._rules.cohort_for(name), rate=rate):
            return DropReason.SAMPLING, rate
        return None, rate
