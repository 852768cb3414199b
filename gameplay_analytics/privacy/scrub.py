"""PII scrubbing: keep only the props an event's JSON Schema declares, drop everything else.

Validation already refuses undeclared props; scrubbing is the second line, for what reaches
storage by any other path (older schema versions, replays, lenient modes).
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Mapping

__all__ = ["Scrubber", "scrub_props"]

_UNKNOWN = "_unknown"


def scrub_props(props: Mapping[str, object], allowed: Collection[str]) -> dict[str, object]:
    """The props whose key is in `allowed`; nested values are kept as they are."""
    return {key: value for key, value in props.items() if key in allowed}


class Scrubber:
    """Per-event allow-lists read from the event schema (`definitions/<event>/properties`).

    `removed` counts dropped keys per event name, for a metric. Only the event name is
    counted, never the dropped key: a key can itself be free text a client should not send.
    """

    __slots__ = ("_allowed", "removed")

    def __init__(self, allowed: Mapping[str, Collection[str]]) -> None:
        self._allowed = {name: frozenset(keys) for name, keys in allowed.items()}
        self.removed: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"Scrubber(events={len(self._allowed)}, removed={self.removed_total})"

    @classmethod
    def from_schema(cls, schema: Mapping[str, object]) -> Scrubber:
        """Build from a parsed `schemas/analytics/v1/event.schema.json` (or a released one).

        Raises ValueError when the schema has no per-event `definitions`.
        """
        definitions = schema.get("definitions")
        if not isinstance(definitions, Mapping) or not definitions:
            raise ValueError("the event schema has no `definitions` with one entry per event")
        allowed: dict[str, frozenset[str]] = {}
        for name, definition in definitions.items():
            properties = definition.get("properties") if isinstance(definition, Mapping) else None
            declared = properties if isinstance(properties, Mapping) else {}
            allowed[str(name)] = frozenset(str(key) for key in declared)
        return cls(allowed)

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    def allowed(self, name: str) -> frozenset[str]:
        """The declared props of an event; none for an event the schema does not define."""
        return self._allowed.get(name, frozenset())

    def scrub(self, name: str, props: Mapping[str, object] | None) -> dict[str, object]:
        """The declared props of `props`; an unknown event keeps none of them."""
        if not props:
            return {}
        kept = scrub_props(props, self.allowed(name))
        dropped = len(props) - len(kept)
        if dropped:
            # Unknown names share one counter so a client cannot mint metric labels.
            self.removed[name if name in self._allowed else _UNKNOWN] += dropped
        return kept
