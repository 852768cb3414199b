"""The event taxonomy of PROTOCOL.md §2 as one table.

Each event name maps to its category, buffer priority, consent gate, sampling class and tier
rule. SDK, gateway, aggregator and operator all read this table; nothing else lists events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "CATEGORY_PRIORITY",
    "EVENTS",
    "TIERS",
    "Category",
    "EventSpec",
    "Priority",
    "spec_for",
]


class Category(enum.StrEnum):
    SESSION = "session"
    COMBAT = "combat"
    PROGRESSION = "progression"
    SOCIAL = "social"
    HEARTBEAT = "heartbeat"


class Priority(enum.IntEnum):
    """Buffer priority: on overflow the SDK drops the lowest value first; LIFECYCLE never."""

    HEARTBEAT = 0
    SOCIAL = 1
    COMMODITY = 2
    GAMEPLAY = 3
    MILESTONE = 4
    LIFECYCLE = 5


TIERS: tuple[str, ...] = ("normal", "elite", "boss")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the pipeline knows about one event name, independent of schema version.

    `sampling_class` names the rule in `schemas/sampling.yml` that sets its default rate;
    `tiered` events are kept at the tier rate when `props.tier` is elite or boss;
    `consent` names the consent flag that gates the event (`None`: only `analytics`).
    """

    name: str
    category: Category
    priority: Priority
    sampling_class: str
    consent: str | None = None
    tiered: bool = False


def _specs(*specs: EventSpec) -> dict[str, EventSpec]:
    return {spec.name: spec for spec in specs}


_S, _C, _P, _SO, _H = (
    Category.SESSION,
    Category.COMBAT,
    Category.PROGRESSION,
    Category.SOCIAL,
    Category.HEARTBEAT,
)

EVENTS: dict[str, EventSpec] = _specs(
    EventSpec("session_start", _S, Priority.LIFECYCLE, "session"),
    EventSpec("session_end", _S, Priority.LIFECYCLE, "session"),
    EventSpec("session_crash", _S, Priority.LIFECYCLE, "session"),
    EventSpec("reconnect", _S, Priority.LIFECYCLE, "session"),
    EventSpec("engage_enemy", _C, Priority.GAMEPLAY, "combat", tiered=True),
    EventSpec("ability_cast", _C, Priority.GAMEPLAY, "combat", tiered=True),
    EventSpec("damage_dealt", _C, Priority.GAMEPLAY, "combat", tiered=True),
    EventSpec("damage_taken", _C, Priority.GAMEPLAY, "combat", tiered=True),
    EventSpec("death", _C, Priority.GAMEPLAY, "combat", tiered=True),
    EventSpec("encounter_end", _C, Priority.MILESTONE, "combat_outcome"),
    EventSpec("xp_gain", _P, Priority.COMMODITY, "commodity"),
    EventSpec("skill_rank_up", _P, Priority.MILESTONE, "milestone"),
    EventSpec("loot_drop", _P, Priority.COMMODITY, "commodity"),
    EventSpec("inventory_move", _P, Priority.COMMODITY, "commodity"),
    EventSpec("craft_result", _P, Priority.COMMODITY, "commodity"),
    EventSpec("party_create", _SO, Priority.SOCIAL, "social", consent="social"),
    EventSpec("party_join", _SO, Priority.SOCIAL, "social", consent="social"),
    EventSpec("emote_played", _SO, Priority.SOCIAL, "social", consent="social"),
    EventSpec("friend_invite", _SO, Priority.SOCIAL, "social", consent="social"),
    EventSpec("chat_message", _SO, Priority.SOCIAL, "social", consent="social"),
    EventSpec("client_tick", _H, Priority.HEARTBEAT, "heartbeat"),
    EventSpec("aoi_population", _H, Priority.HEARTBEAT, "heartbeat"),
    EventSpec("snapshot_size", _H, Priority.HEARTBEAT, "heartbeat"),
)

# Lowest buffer priority per category, for reports and drop accounting.
CATEGORY_PRIORITY: dict[Category, Priority] = {
    category: min(s.priority for s in EVENTS.values() if s.category is category)
    for category in Category
}


def spec_for(name: str) -> EventSpec | None:
    """The taxonomy entry for an event name, or None for a name the pipeline does not know."""
    return EVENTS.get(name)
