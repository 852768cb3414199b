"""Synthetic players: a session of combat, progression, social play and heartbeats.

Behaviour is drawn from a seeded RNG per player, so a run is reproducible; the mix follows
the taxonomy's categories in plausible proportions (combat-heavy, heartbeats every second).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

from gameplay_analytics.loadgen import geo
from gameplay_analytics.sdk import AnalyticsClient

__all__ = ["CLASSES", "PLAYSTYLES", "REGIONS", "STEADY_EVENTS", "EventMix", "PlayerProfile",
           "play_session", "play_steady"]  # fmt: skip

CLASSES = ("warrior", "ranger", "arcane_mage", "cleric", "rogue")
# The playstyles insights derives from the event mix (insights.definitions.PLAYSTYLE_RULE):
# each synthetic player leans to one, so the demo's slices by playstyle differ.
PLAYSTYLES = ("fighter", "explorer", "crafter", "socialiser")
REGIONS = ("eu-west", "us-east", "ap-southeast")
# Multipliers of (combat, progression, social) in a player's EventMix, per playstyle.
_STYLE_MIX = {
    "fighter": (1.8, 0.5, 0.4),
    "explorer": (0.35, 2.0, 0.6),
    "crafter": (0.35, 2.0, 0.5),
    "socialiser": (0.35, 0.6, 4.0),
}
_NOVICE_FIGHTS = 4
_NOVICE_ODDS = 0.3
_TIERS = ("normal", "normal", "normal", "normal", "elite", "elite", "boss")
_RARITIES = ("common", "common", "common", "uncommon", "uncommon", "rare", "epic", "legendary")


@dataclass(frozen=True)
class EventMix:
    """Relative weights of what a player does between heartbeats (normalised when drawn)."""

    combat: float = 0.55
    progression: float = 0.25
    social: float = 0.12
    snapshot: float = 0.08

    @classmethod
    def parse(cls, text: str) -> EventMix:
        """`combat=0.7,social=0.1`: the named weights, the others at their defaults."""
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key.strip() not in cls.__dataclass_fields__:
                raise ValueError(
                    f"unknown mix part {key!r}: use {', '.join(cls.__dataclass_fields__)}"
                )
            weights[key.strip()] = float(value)
        mix = cls(**weights)
        if min(mix.combat, mix.progression, mix.social, mix.snapshot) < 0 or mix.total <= 0:
            raise ValueError(f"mix weights must be >= 0 and not all zero: {text!r}")
        return mix

    @property
    def total(self) -> float:
        return self.combat + self.progression + self.social + self.snapshot


@dataclass(frozen=True)
class PlayerProfile:
    """Who a synthetic player is: stable per seed."""

    seed: int
    character_class: str
    level: int
    playstyle: str
    skill: float  # chance to win an encounter
    tutorial_s: float  # a new player's time before the first fight (onboarding runs)
    region: str = REGIONS[0]  # the game region the login service puts in the token
    address: str | None = None  # the public address it connects from (`X-Forwarded-For`)

    @classmethod
    def draw(cls, seed: int) -> PlayerProfile:
        rng = random.Random(seed)
        drawn = cls(
            seed=seed,
            character_class=rng.choice(CLASSES),
            level=rng.randint(1, 60),
            playstyle=rng.choice(PLAYSTYLES),
            skill=rng.uniform(0.35, 0.9),
            tutorial_s=rng.uniform(2.0, 30.0),
            region=rng.choice(REGIONS),
        )
        return replace(drawn, address=geo.address_in(drawn.region, rng))

    def styled(self, mix: EventMix) -> EventMix:
        """`mix` leaning to this player's playstyle."""
        combat, progression, social = _STYLE_MIX.get(self.playstyle, (1.0, 1.0, 1.0))
        return EventMix(
            combat=mix.combat * combat,
            progression=mix.progression * progression,
            social=mix.social * social,
            snapshot=mix.snapshot,
        )


async def play_session(
    client: AnalyticsClient,
    profile: PlayerProfile,
    *,
    seconds: float,
    pace: float = 1.0,
    mix: EventMix = EventMix(),
    tutorial: bool = False,
) -> None:
    """Play for `seconds`; `pace` scales how often things happen (1.0 ≈ 20–25 events/s tracked,
    about 60 % of them kept by the default sampling rules). With `tutorial`, a new player
    spends `profile.tutorial_s` on progression before the first fight (the onboarding funnel
    then has something to measure)."""
    rng = random.Random(profile.seed ^ 0x5EED)
    mix = profile.styled(mix)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    fights_from = loop.time() + (profile.tutorial_s if tutorial else 0.0)
    fights = 0
    client.track(
        "session_start",
        character_class=profile.character_class,
        character_level=profile.level,
        playstyle=profile.playstyle,
    )
    next_tick = loop.time()
    while (now := loop.time()) < end:
        if now >= next_tick:
            client.track("client_tick", fps=round(rng.uniform(30, 144), 1))
            client.track("aoi_population", count=rng.randint(0, 80))
            next_tick = now + 1.0
        roll = rng.random() * mix.total
        if roll < mix.combat and now < fights_from:
            _progress(client, rng, profile.playstyle)
        elif roll < mix.combat:
            # A new player's first fights are hard: the funnel's last step has a drop too.
            novice = tutorial and fights < _NOVICE_FIGHTS
            await _encounter(client, profile, rng, pace, odds=_NOVICE_ODDS if novice else 1.0)
            fights += 1
        elif roll < mix.combat + mix.progression:
            _progress(client, rng, profile.playstyle)
        elif roll < mix.combat + mix.progression + mix.social:
            _socialise(client, rng)
        else:
            client.track("snapshot_size", bytes=rng.randint(800, 4000))
        await asyncio.sleep(rng.uniform(0.1, 0.3) / pace)
    client.track("session_end", reason="logout" if rng.random() < 0.9 else "timeout")


async def _encounter(
    client: AnalyticsClient,
    profile: PlayerProfile,
    rng: random.Random,
    pace: float,
    *,
    odds: float = 1.0,
) -> None:
    tier = rng.choice(_TIERS)
    encounter = f"enc_{rng.randint(1, 40)}"
    client.track("engage_enemy", enemy_id=f"{encounter}_mob_{rng.randint(1, 9)}", tier=tier)
    for _ in range(rng.randint(1, 4)):
        client.track("ability_cast", ability_id=f"ability_{rng.randint(1, 12)}", tier=tier)
        client.track("damage_dealt", amount=round(rng.uniform(10, 900), 1), tier=tier)
        if rng.random() < 0.5:
            client.track("damage_taken", amount=round(rng.uniform(5, 400), 1), tier=tier)
        await asyncio.sleep(rng.uniform(0.02, 0.08) / pace)
    odds *= profile.skill * {"normal": 1.0, "elite": 0.8, "boss": 0.55}[tier]
    outcome = "win" if rng.random() < odds else rng.choice(("loss", "flee"))
    if outcome == "loss":
        client.track("death", tier=tier)
    client.track("encounter_end", encounter_id=encounter, tier=tier, outcome=outcome)
    if outcome == "win":
        client.track("xp_gain", amount=rng.randint(20, 400), source="combat")
        if rng.random() < 0.4:
            client.track("loot_drop", item_id=f"item_{rng.randint(1, 300)}",
                         rarity=rng.choice(_RARITIES))  # fmt: skip


def _progress(client: AnalyticsClient, rng: random.Random, style: str = "") -> None:
    choice = rng.random()
    if style == "crafter" and choice < 0.5:
        client.track("craft_result", recipe_id=f"recipe_{rng.randint(1, 50)}",
                     success=rng.random() < 0.7)  # fmt: skip
        return
    if choice < 0.4:
        client.track("xp_gain", amount=rng.randint(5, 150), source="quest")
    elif choice < 0.65:
        client.track(
            "inventory_move", item_id=f"item_{rng.randint(1, 300)}", **{"from": "bag", "to": "belt"}
        )
    elif choice < 0.85:
        client.track("craft_result", recipe_id=f"recipe_{rng.randint(1, 50)}",
                     success=rng.random() < 0.7)  # fmt: skip
    else:
        client.track("skill_rank_up", skill=f"skill_{rng.randint(1, 20)}", rank=rng.randint(1, 10))


def _socialise(client: AnalyticsClient, rng: random.Random) -> None:
    choice = rng.random()
    if choice < 0.4:
        client.track("emote_played", emote_id=rng.choice(("wave", "dance", "cheer", "bow")))
    elif choice < 0.7:
        client.track("chat_message", length=rng.randint(1, 200))
    elif choice < 0.85:
        client.track("party_join", party_size=rng.randint(2, 5))
    elif choice < 0.95:
        client.track("party_create", party_size=1)
    else:
        client.track("friend_invite")


# Events every default rule keeps at rate 1.0 (elite/boss combat, outcomes, milestones), so a
# steady player's offered load is exactly its track() rate, whoever the player is.
STEADY_EVENTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("engage_enemy", {"enemy_id": "enc_1_mob_3", "tier": "elite"}),
    ("ability_cast", {"ability_id": "ability_4", "tier": "elite"}),
    ("damage_dealt", {"amount": 412.5, "tier": "elite"}),
    ("ability_cast", {"ability_id": "ability_9", "tier": "boss"}),
    ("damage_dealt", {"amount": 880.0, "tier": "boss"}),
    ("damage_taken", {"amount": 120.0, "tier": "boss"}),
    ("encounter_end", {"encounter_id": "enc_1", "tier": "boss", "outcome": "win"}),
    ("skill_rank_up", {"skill": "skill_3", "rank": 4}),
)
_STEADY_TICK_S = 0.1


async def play_steady(client: AnalyticsClient, *, seconds: float, rate: float) -> None:
    """Track exactly `rate` events/s, spread over 10 Hz ticks, for `seconds` — for benchmarks
    that need a known, steady offered load rather than bursty play."""
    loop = asyncio.get_running_loop()
    client.track("session_start")
    start = loop.time()
    end = start + seconds
    sent = 0
    index = 0
    while (now := loop.time()) < end:
        due = int((now - start) * rate)  # catch up after a late wake-up: the rate stays exact
        while sent < due:
            name, props = STEADY_EVENTS[index % len(STEADY_EVENTS)]
            client.track(name, **props)
            sent += 1
            index += 1
        await asyncio.sleep(_STEADY_TICK_S - (loop.time() - start) % _STEADY_TICK_S)
    client.track("session_end", reason="logout")
