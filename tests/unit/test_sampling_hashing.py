"""The sampling hash is a cross-SDK contract: golden values, stability and kept fractions."""

from __future__ import annotations

import math
import random
import uuid

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.sampling import hashing

# Computed once with `xxhash.xxh64_intdigest(f"{uuid}:{event}".encode(), seed=0)`. Every SDK
# (C#, C++, TypeScript) must reproduce these; if this test changes, every client breaks.
GOLDEN = [
    ("9b2f6a3e-1c4d-4f5a-8b7c-2d1e0f9a8b7c", "engage_enemy", 8235243591119640549),
    ("00000000-0000-0000-0000-000000000000", "session_start", 1137652386719847176),
    ("ffffffff-ffff-ffff-ffff-ffffffffffff", "client_tick", 4183828671694659340),
    ("3f1c2a9e-7b4d-4e8a-9c0f-5d6e7f8a9b0c", "loot_drop", 3779018244943068959),
]


def test_xxhash_is_the_reference_xxh64() -> None:
    # The published XXH64 of the empty input with seed 0.
    assert xxhash.xxh64_hexdigest(b"", seed=0) == "ef46db3751d8e999"


@pytest.mark.parametrize(("player", "event", "expected"), GOLDEN)
def test_golden_buckets(player: str, event: str, expected: int) -> None:
    assert hashing.bucket(player, event) == expected
    assert hashing.bucket(player.upper(), event) == expected
    assert hashing.bucket(uuid.UUID(player), event) == expected


@pytest.mark.parametrize(("player", "event", "expected"), GOLDEN)
def test_golden_decisions_follow_the_threshold(player: str, event: str, expected: int) -> None:
    rate = expected / 2**64
    assert not hashing.keep(player, event, rate=math.nextafter(rate, 0.0))
    assert hashing.keep(player, event, rate=math.nextafter(rate, 1.0))


def test_threshold_is_exact_at_the_edges() -> None:
    assert hashing.threshold(0.5) == 2**63
    assert hashing.threshold(0.1) == math.ceil(0.1 * 2**64)
    assert hashing.threshold(2**-64) == 1
    assert hashing.threshold(5e-324) == 1  # the smallest float still keeps bucket 0
    assert hashing.threshold(0.0) == 0
    assert hashing.threshold(-1.0) == 0
    assert hashing.threshold(float("nan")) == 0
    assert hashing.threshold(1.0) == 2**64
    assert hashing.threshold(7.0) == 2**64


@given(st.uuids(), st.sampled_from(["engage_enemy", "xp_gain", "client_tick"]))
def test_rate_one_keeps_and_rate_zero_drops_everyone(player: uuid.UUID, event: str) -> None:
    assert hashing.keep(player, event, rate=1.0)
    assert hashing.keep(player, event, rate=1.5)
    assert not hashing.keep(player, event, rate=0.0)
    assert not hashing.keep(player, event, rate=-0.2)
    assert not hashing.keep(player, event, rate=float("nan"))


@given(st.uuids(), st.text(min_size=1, max_size=30), st.floats(0.0, 1.0))
def test_decisions_are_stable_and_case_blind(player: uuid.UUID, event: str, rate: float) -> None:
    first = hashing.keep(player, event, rate=rate)
    assert hashing.keep(str(player), event, rate=rate) == first
    assert hashing.keep(str(player).upper(), event, rate=rate) == first


@given(st.uuids(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_kept_sets_are_nested(player: uuid.UUID, low: float, high: float) -> None:
    low, high = sorted((low, high))
    # Raising the rate only adds players: nobody leaves the sample when a designer turns it up.
    if hashing.keep(player, "death", rate=low):
        assert hashing.keep(player, "death", rate=high)


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_kept_fraction_matches_the_rate(rate: float) -> None:
    players = 20_000
    rng = random.Random(rate)
    kept = sum(
        hashing.keep(uuid.UUID(int=rng.getrandbits(128), version=4), "damage_dealt", rate=rate)
        for _ in range(players)
    )
    sigma = math.sqrt(players * rate * (1 - rate))
    assert abs(kept - players * rate) < 5 * sigma


def test_event_names_sample_independently() -> None:
    rng = random.Random(7)
    players = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20_000)]
    both = sum(
        hashing.keep(p, "xp_gain", rate=0.5) and hashing.keep(p, "loot_drop", rate=0.5)
        for p in players
    )
    # Independent halves overlap on a quarter; the same half would overlap on a half.
    sigma = math.sqrt(len(players) * 0.25 * 0.75)
    assert abs(both - len(players) * 0.25) < 5 * sigma
