"""Scripted players with known sequences, and the true metrics computed from the script.

A `Player` is a list of sessions, each a list of actions at known times. `events()` turns it
into the events a client would send; `stored_rows()` keeps them as the gateway and aggregator
would (the real compiled sampling rules with cohorts, the real monthly pseudonym) and gives
hot-store rows. The `true_*` functions read only the script, never the stored data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.privacy.profile import profile_key
from gameplay_analytics.privacy.pseudonym import Pseudonymiser, SaltBook
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage.profile import ProfileUpdate
from gameplay_analytics.sampling import CompiledRules

SALTS = Pseudonymiser(SaltBook(secret="insights-test-salt-secret"))
PROFILE_SECRET = "insights-test-profile-secret"
GUID = uuid.UUID(int=7)


@dataclasses.dataclass(frozen=True)
class Session:
    start: dt.datetime
    minutes: float
    # (offset minutes, event name, props)
    actions: tuple[tuple[float, str, dict[str, Any]], ...] = ()
    ended: bool = True  # False: no session_end, the session runs to its last event


@dataclasses.dataclass(frozen=True)
class Player:
    uuid: str
    klass: str
    region: str
    platform: str
    build: str
    sessions: tuple[Session, ...]

    def events(self) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
        out: list[tuple[dt.datetime, str, dict[str, Any]]] = []
        for s in self.sessions:
            out.append((s.start, "session_start", {"character_class": self.klass}))
            for offset, name, props in s.actions:
                out.append((s.start + dt.timedelta(minutes=offset), name, props))
            if s.ended:
                out.append(
                    (s.start + dt.timedelta(minutes=s.minutes), "session_end", {"reason": "logout"})
                )
        return sorted(out, key=lambda e: e[0])


# -- actions ---------------------------------------------------------------------------------


def fight(tier: str, outcome: str, *, deaths: int = 0) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [("engage_enemy", {"enemy_id": "orc", "tier": tier})]
    out += [("death", {"tier": tier})] * deaths
    out.append(("encounter_end", {"encounter_id": "e1", "tier": tier, "outcome": outcome}))
    return out


def xp(amount: int, source: str = "combat") -> list[tuple[str, dict[str, Any]]]:
    return [("xp_gain", {"amount": amount, "source": source})]


def loot(item: str, rarity: str) -> list[tuple[str, dict[str, Any]]]:
    return [("loot_drop", {"item_id": item, "rarity": rarity})]


def craft(recipe: str, success: bool) -> list[tuple[str, dict[str, Any]]]:
    return [("craft_result", {"recipe_id": recipe, "success": success})]


def discard(item: str) -> list[tuple[str, dict[str, Any]]]:
    return [("inventory_move", {"item_id": item, "from": "bag", "to": "trash"})]


def chat() -> list[tuple[str, dict[str, Any]]]:
    return [("chat_message", {"length": 12})]


def session(
    start: dt.datetime, minutes: float, *steps: list[tuple[str, dict[str, Any]]], ended: bool = True
) -> Session:
    """A session whose actions are spread evenly over its length."""
    flat = [a for step in steps for a in step]
    gap = minutes / (len(flat) + 1)
    actions = tuple((gap * (i + 1), name, props) for i, (name, props) in enumerate(flat))
    return Session(start, minutes, actions, ended)


def population(n: int, *, start: dt.datetime, seed: int = 10, days: int = 10) -> list[Player]:
    """`n` scripted players of four kinds, activated over `days` days from `start`."""
    rng = random.Random(seed)
    players = []
    for i in range(n):
        kind = i % 4
        first = start + dt.timedelta(days=i % days, hours=rng.randint(0, 20))
        sessions: list[Session] = []
        if kind == 0:  # fighter: fights from day one, wins sometimes
            for d in (0, 1, 7):
                outcome = "win" if rng.random() < 0.6 else "loss"
                tier = rng.choice(["normal", "normal", "elite", "boss"])
                sessions.append(session(first + dt.timedelta(days=d), 40 + 5 * d,
                                        fight(tier, outcome, deaths=rng.randint(0, 1)),
                                        fight("normal", "flee"), xp(50 + 10 * (i % 5), "combat"),
                                        loot("sword", "rare")))  # fmt: skip
        elif kind == 1:  # explorer: first fight only on day 9 (outside a 7-day window)
            sessions.append(session(first, 30, xp(20, "quest"), xp(30, "exploration")))
            sessions.append(session(first + dt.timedelta(days=9), 20,
                                    fight("normal", "win"), xp(5, "quest")))  # fmt: skip
        elif kind == 2:  # crafter: loot and crafts, no end on one session
            sessions.append(session(first, 25, loot("ore", "common"), craft("potion", True),
                                    craft("potion", False), discard("ore"),
                                    xp(10, "craft")))  # fmt: skip
            sessions.append(session(first + dt.timedelta(days=1), 15, craft("potion", True),
                                    loot("gem", "epic"), ended=False))  # fmt: skip
        else:  # socialiser: chats, one fight lost on day 2, comes back on day 30
            sessions.append(session(first, 10, chat(), chat(), chat()))
            sessions.append(
                session(first + dt.timedelta(days=2), 10, fight("boss", "loss"), chat())
            )
            sessions.append(session(first + dt.timedelta(days=30), 5, chat()))
        players.append(
            Player(
                uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                klass=("warrior", "ranger", "cleric", "rogue")[kind],
                region=("eu-west", "us-east")[i % 2],
                platform=("win64", "ps5", "android")[i % 3],
                build="2025.10.1",
                sessions=tuple(sessions),
            )
        )
    return players


PLAYSTYLE_OF_KIND = {"warrior": "fighter", "ranger": "explorer", "cleric": "crafter",
                     "rogue": "socialiser"}  # fmt: skip


# -- storing as the pipeline would -----------------------------------------------------------


def stored_rows(players: Iterable[Player], rules: CompiledRules) -> list[tuple[Any, ...]]:
    """Hot-store rows of what the gateway keeps under `rules` (cohort hash, real rates) and
    the aggregator stores (monthly pseudonym of the event's day)."""
    rows = []
    seq = 0
    for p in players:
        for ts, name, props in p.events():
            keep, rate = rules.should_keep(p.uuid, name, props=props)
            seq += 1
            if not keep:
                continue
            day = ts.date()
            values: dict[str, Any] = dict(
                analytics_player_id=SALTS.player_id(p.uuid, day=day), client_guid=GUID,
                seq=seq, event_name=name, category=EVENTS[name].category.value, event_ts=ts,
                event_day=day, received_at=ts, session_id=f"s-{p.uuid[:8]}",
                schema_version="1.0.0", sample_rate=rate, build=p.build, platform=p.platform,
                shard=None, region=p.region, country="GB", latency_bucket="lt50",
                props=json.dumps(props), geo_region=None, envelope_id=seq, stream_seq=seq,
                source="client",
            )  # fmt: skip
            rows.append(tuple(values[c] for c in storage.EVENT_COLUMNS))
    return rows


def profiles(players: Iterable[Player], rules: CompiledRules) -> list[ProfileUpdate]:
    """The onboarding profiles the aggregator builds from the same kept events."""
    out = []
    for p in players:
        update = ProfileUpdate(profile_key(p.uuid, PROFILE_SECRET))
        for ts, name, props in p.events():
            keep, rate = rules.should_keep(p.uuid, name, props=props)
            if keep:
                update.observe(name, ts, rate=rate, props=props, region=p.region,
                               platform=p.platform, build=p.build)  # fmt: skip
        out.append(update)
    return out


# -- the truth, from the script alone ---------------------------------------------------------


def _first(p: Player, name: str, pred: Any = None) -> dt.datetime | None:
    times = [t for t, n, props in p.events() if n == name and (pred is None or pred(props))]
    return min(times) if times else None


def true_funnel(players: Sequence[Player], window: int) -> dict[str, int]:
    out = Counter({"first_session": 0, "first_combat": 0, "first_combat_win": 0})
    for p in players:
        start = _first(p, "session_start")
        assert start is not None
        out["first_session"] += 1
        for step, name, pred in (
            ("first_combat", "engage_enemy", None),
            ("first_combat_win", "encounter_end", lambda pr: pr["outcome"] == "win"),
        ):
            t = _first(p, name, pred)
            if t is not None and (t.date() - start.date()).days <= window:
                out[step] += 1
    return dict(out)


def true_retention(players: Sequence[Player]) -> dict[tuple[str, int], tuple[int, int]]:
    """(activation day, N) -> (players, retained)."""
    out: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for p in players:
        start = _first(p, "session_start")
        assert start is not None
        days = {t.date() for t, _, _ in p.events()}
        for n in (1, 7, 30):
            cell = out[(start.date().isoformat(), n)]
            cell[0] += 1
            cell[1] += start.date() + dt.timedelta(days=n) in days
    return {k: (v[0], v[1]) for k, v in out.items()}


def _session_minutes(s: Session) -> float:
    if s.ended:
        return s.minutes
    return max((offset for offset, _, _ in s.actions), default=0.0)


def true_sessions(players: Sequence[Player]) -> dict[str, float]:
    lengths = sorted(_session_minutes(s) for p in players for s in p.sessions)
    mid = len(lengths) // 2
    median = lengths[mid] if len(lengths) % 2 else (lengths[mid - 1] + lengths[mid]) / 2
    player_days = {(p.uuid, s.start.date()) for p in players for s in p.sessions}
    return {
        "sessions": len(lengths),
        "players": len(players),
        "median_minutes": median,
        "sessions_per_player_day": len(lengths) / len(player_days),
    }


def true_combat(players: Sequence[Player]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for p in players:
        for _, name, props in p.events():
            if name == "encounter_end":
                out[props["tier"]]["encounters"] += 1
                out[props["tier"]][props["outcome"]] += 1
            elif name == "death":
                out[props["tier"]]["deaths"] += 1
    return out


def true_xp_per_hour(players: Sequence[Player]) -> float:
    xp_total = sum(pr["amount"] for p in players for _, n, pr in p.events() if n == "xp_gain")
    hours = sum(_session_minutes(s) for p in players for s in p.sessions) / 60
    return xp_total / hours


def true_economy(players: Sequence[Player]) -> dict[tuple[str, str], tuple[int, float]]:
    """(flow, item) -> (events, amount)."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])

    def add(key: tuple[str, str], amount: float) -> None:
        out[key][0] += 1
        out[key][1] += amount

    for p in players:
        for _, name, pr in p.events():
            if name == "loot_drop":
                add(("source", pr["item_id"]), 1)
            elif name == "xp_gain":
                add(("source", "xp"), pr["amount"])
            elif name == "craft_result":
                add(("sink", pr["recipe_id"]), 1)
                if pr["success"]:
                    add(("source", pr["recipe_id"]), 1)
            elif name == "inventory_move" and pr["to"] == "trash":
                add(("sink", pr["item_id"]), 1)
    return {k: (int(v[0]), v[1]) for k, v in out.items()}
