"""Parse and fully validate 20-event `analytics` frames vs a bare `orjson.loads` of the bytes.

Target (issue 2): at least 0.5 × the orjson rate, measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from gameplay_analytics.contract.frames import parse_client_frame
from gameplay_analytics.contract.registry import SchemaRegistry

_PROPS: dict[str, dict[str, Any]] = {
    "engage_enemy": {"enemy_id": "crypt_skeleton_archer_07", "tier": "elite"},
    "ability_cast": {"ability_id": "arcane_missile_rank_3", "tier": "normal"},
    "damage_dealt": {"amount": 1254.75, "tier": "boss"},
    "damage_taken": {"amount": 87.5, "tier": "elite"},
    "xp_gain": {"amount": 1250, "source": "quest:the_lost_crypt/stage_2"},
    "loot_drop": {"item_id": "weapon:sword_of_dawn_0042", "rarity": "legendary"},
    "inventory_move": {"item_id": "potion_greater_heal", "from": "bag_slot_12", "to": "belt_3"},
    "encounter_end": {"encounter_id": "crypt_lord_phase_2", "tier": "boss", "outcome": "win"},
    "client_tick": {"fps": 143.7},
    "session_start": {"character_class": "arcane_mage", "character_level": 37,
                      "playstyle": "explorer"},
}  # fmt: skip


def sample_frame(events: int = 20) -> bytes:
    names = sorted(_PROPS)
    body = [
        {"seq": 1_000_000 + i, "name": names[i % len(names)], "ts": 1_759_320_000_123 + 97 * i,
         "props": _PROPS[names[i % len(names)]]}
        for i in range(events)
    ]  # fmt: skip
    return orjson.dumps({"type": "analytics", "id": 42, "schema": "1.0.0", "events": body})


def _rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(500):
            fn()
        count += 500
    return count / elapsed


def run() -> list[dict[str, Any]]:
    frame = sample_frame()
    validator = SchemaRegistry.from_released().validator("1.0.0")
    assert validator is not None

    def full() -> None:
        parsed = parse_client_frame(frame)
        result = validator.validate(parsed.events)  # type: ignore[union-attr]
        assert len(result.accepted) == 20

    raw = _rate(lambda: orjson.loads(frame))
    ours = _rate(full)
    return [
        {"component": "contract", "metric": f"20-event frames/s parsed+validated ({len(frame)} B)",
         "value": round(ours), "raw": round(raw), "raw_name": "orjson.loads",
         "ratio": round(ours / raw, 3), "target": 0.5},
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run():
        print(row)
