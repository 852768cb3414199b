"""Consent from the `hello` frame, and whether it lets an event through (PROTOCOL.md §1).

Opt-out (`analytics: false`) drops everything; `social: false` drops the social events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from gameplay_analytics.contract.taxonomy import EventSpec

__all__ = ["Consent", "allows"]


@dataclasses.dataclass(frozen=True, slots=True)
class Consent:
    """The player's consent flags; a flag the client did not send means yes (the default)."""

    analytics: bool = True
    social: bool = True

    @classmethod
    def from_hello(cls, consent: object) -> Consent:
        """Read `hello.consent`, failing closed on anything that is not a clear answer.

        A missing `consent` (None) or a missing key is consent, as the protocol defaults it.
        A value that is present but not a JSON boolean (`"false"`, `0`, `null`) counts as a
        refusal, and so does a `consent` that is not an object: a buggy client must never
        turn an opt-out into tracking.
        """
        if consent is None:
            return cls()
        if not isinstance(consent, Mapping):
            return cls(analytics=False, social=False)
        return cls(**{name: _answer(consent, name) for name in _FLAGS})

    def flag(self, name: str) -> bool:
        """The flag called `name`; False for a gate this version does not know (fail closed)."""
        return name in _FLAGS and getattr(self, name) is True


_FLAGS = frozenset(field.name for field in dataclasses.fields(Consent))


def _answer(consent: Mapping[object, object], name: str) -> bool:
    # Only a JSON `true` grants, only absence defaults to yes; anything else refuses.
    return consent[name] is True if name in consent else True


def allows(consent: Consent, spec: EventSpec) -> bool:
    """Whether an event may be sent, accepted and stored under this consent."""
    if not consent.analytics:
        return False
    return spec.consent is None or consent.flag(spec.consent)
