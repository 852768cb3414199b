"""The sampling hash is a cross-SDK contract: golden values, stability and kept fractions."""

from __future__ import annotations

import json
import math
import random
import uuid
from typing import Any

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.contract import paths
from gameplay_analytics.sampling import hashing

# The cross-SDK golden vectors, one file every SDK's tests read (Python here, TypeScript in
# client/). If this file changes, every client breaks.
GOLDEN: dict[str, Any] = json.loads(
    (paths.schemas_dir() / "sampling-golden.json").read_text(encoding="utf-8")
)
_PLAYER_KEYS = [
    (row["key"].rsplit(":", 1)[0], row["key"].rsplit(":", 1)[1], int(row["value"]))
    for row in GOLDEN["hash"]
    if row["key"].count(":") == 1 and len(row["key"].split(":")[0]) == 36
]


def test_golden_file_is_simple_and_complete() -> None:
    assert set(GOLDEN) >= {"hash", "decisions"}
    assert all(set(row) == {"key", "value"} for row in GOLDEN["hash"])
    assert all(set(row) == {"player", "cohort", "rate", "kept"} for row in GOLDEN["decisions"])
    kept = [row["kept"] for row in GOLDEN["decisions"]]
    assert any(kept) and not all(kept)
    assert len(_PLAYER_KEYS) >= 8


@pytest.mark.parametrize("row", GOLDEN["hash"], ids=lambda row: row["key"][-24:] or "empty")
def test_golden_hash_values_are_the_reference_xxh64(row: dict[str, str]) -> None:
    assert xxhash.xxh64_intdigest(row["key"].encode("utf-8"), seed=0) == int(row["value"])
    assert 0 <= int(row["value"]) < hashing.BUCKETS


@pytest.mark.parametrize(("player", "cohort", "expected"), _PLAYER_KEYS)
def test_golden_buckets(player: str, cohort: str, expected: int) -> None:
    assert hashing.bucket(player, cohort) == expected
    assert hashing.bucket(player.upper(), cohort) == expected
    assert hashing.bucket(uuid.UUID(player), cohort) == expected


@pytest.mark.parametrize("row", GOLDEN["decisions"])
def test_golden_decisions(row: dict[str, Any]) -> None:
    assert hashing.keep(row["player"], row["cohort"], rate=row["rate"]) is row["kept"]


def test_xxhash_is_the_reference_xxh64() -> None:
    # The published XXH64 of the empty input with seed 0.
    assert xxhash.xxh64_hexdigest(b"", seed=0) == "ef46db3751d8e999"


@pytest.mark.parametrize(("player", "cohort", "expected"), _PLAYER_KEYS)
def test_golden_decisions_follow_the_threshold(player: str, cohort: str, expected: int) -> None:
    rate = expected / 2**64
    assert not hashing.keep(player, cohort, rate=math.nextafter(rate, 0.0))
    assert hashing.keep(player, cohort, rate=math.nextafter(rate, 1.0))


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


def test_cohorts_sample_independently() -> None:
    rng = random.Random(7)
    players = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20_000)]
    both = sum(
        hashing.keep(p, "commodity", rate=0.5) and hashing.keep(p, "social", rate=0.5)
        for p in players
    )
    # Independent halves overlap on a quarter; the same half would overlap on a half.
    sigma = math.sqrt(len(players) * 0.25 * 0.75)
    assert abs(both - len(players) * 0.25) < 5 * sigma
