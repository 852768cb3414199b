"""The gateway circuit breaker: trip after a sustained full queue, recover after a calm one."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.sampling import BreakerConfig, CircuitBreaker, compile, load_default_rules
from gameplay_analytics.sampling.compiled import thinnable


def feed(breaker: CircuitBreaker, fill: float, start: float, end: float) -> list[float]:
    """Readings once a second over [start, end]; the multipliers announced on the way."""
    changes = []
    for now in range(int(start), int(end) + 1):
        change = breaker.observe(fill, float(now))
        if change is not None:
            changes.append(change)
    return changes


def test_full_queue_for_thirty_seconds_halves_the_multiplier() -> None:
    breaker = CircuitBreaker()
    assert feed(breaker, 0.9, 0, 29) == []
    assert breaker.observe(0.9, 30.0) == 0.5
    assert breaker.multiplier == 0.5


def test_trips_repeat_each_hold_period_down_to_the_floor() -> None:
    breaker = CircuitBreaker()
    assert feed(breaker, 0.95, 0, 200) == [0.5, 0.25, 0.125]
    assert breaker.multiplier == 0.125


def test_a_calm_queue_steps_back_up_to_one() -> None:
    breaker = CircuitBreaker()
    feed(breaker, 0.95, 0, 90)
    assert breaker.multiplier == 0.125
    assert feed(breaker, 0.1, 91, 200) == [0.25, 0.5, 1.0]
    assert breaker.multiplier == 1.0


def test_recovery_waits_for_its_hold_period() -> None:
    breaker = CircuitBreaker()
    feed(breaker, 0.9, 0, 30)
    assert feed(breaker, 0.2, 31, 40) == []
    assert breaker.observe(0.2, 41.0) == 1.0


def test_a_dip_restarts_the_trip_timer() -> None:
    breaker = CircuitBreaker()
    feed(breaker, 0.9, 0, 25)
    assert breaker.observe(0.7, 26.0) is None
    assert feed(breaker, 0.9, 27, 56) == []
    assert breaker.observe(0.9, 57.0) == 0.5


def test_the_band_between_recover_and_trip_holds() -> None:
    breaker = CircuitBreaker()
    feed(breaker, 0.9, 0, 30)
    assert feed(breaker, 0.6, 31, 500) == []
    assert breaker.multiplier == 0.5


def test_exactly_at_the_threshold_is_not_over_it() -> None:
    breaker = CircuitBreaker()
    assert feed(breaker, 0.8, 0, 100) == []


def test_nan_readings_change_nothing() -> None:
    breaker = CircuitBreaker()
    feed(breaker, 0.9, 0, 20)
    assert breaker.observe(math.nan, 21.0) is None
    assert feed(breaker, 0.9, 22, 30) == [0.5]


def test_a_floor_between_steps_is_reached_and_left_exactly() -> None:
    breaker = CircuitBreaker(BreakerConfig(floor=0.1, hold_s=1, recover_hold_s=1))
    assert feed(breaker, 1.0, 0, 20) == [0.5, 0.25, 0.125, 0.1]
    assert feed(breaker, 0.0, 21, 40) == [0.125, 0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    "kwargs", [{"step": 1.0}, {"step": 0.0}, {"floor": 0.0}, {"recover_below": 0.9}, {"hold_s": -1}]
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**kwargs)


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 60.0)), max_size=60))
def test_the_multiplier_stays_within_floor_and_one(readings: list[tuple[float, float]]) -> None:
    breaker = CircuitBreaker()
    now = 0.0
    for fill, dt in readings:
        now += dt
        before = breaker.multiplier
        change = breaker.observe(fill, now)
        assert 0.125 <= breaker.multiplier <= 1.0
        assert change == (breaker.multiplier if breaker.multiplier != before else None)


CRITICAL = [
    ("session_start", None), ("session_end", None), ("session_crash", None),
    ("reconnect", None), ("encounter_end", None), ("encounter_end", "normal"),
    ("skill_rank_up", None), *((name, tier) for tier in ("boss", "elite") for name in (
        "engage_enemy", "ability_cast", "damage_dealt", "damage_taken", "death")),
]  # fmt: skip


def test_critical_events_are_kept_whole_at_the_breakers_floor() -> None:
    """PROTOCOL.md §2: the multiplier never touches session lifecycle, combat outcomes,
    boss/elite combat and skill_rank_up; it thins what is already a sample."""
    breaker = CircuitBreaker()
    for second in range(0, 400):  # a queue full for long enough to reach the floor
        breaker.observe(1.0, float(second))
    floor = breaker.multiplier
    assert floor == BreakerConfig().floor
    rules = compile(load_default_rules())
    players = [f"00000000-0000-4000-8000-{i:012d}" for i in range(300)]
    for name, tier in CRITICAL:
        props = {"tier": tier} if tier else None
        assert rules.rate_for(name, props, multiplier=floor) == 1.0, name
        for player in players:
            assert rules.should_keep(player, name, props=props, multiplier=floor)[0], name
            guard = SamplingGuard(
                player_uuid=player, consent=Consent(), rules=rules, multiplier=floor
            )
            assert guard.decide(name, tier, 0.0) == (None, 1.0), (name, tier)
    thinned = [("engage_enemy", "normal", 0.5), ("loot_drop", None, 0.3), ("party_join", None, 0.5)]
    for name, tier, rate in thinned:
        rule = rules.rule(name)
        assert rule is not None and thinnable(rule, rate)
        props = {"tier": tier} if tier else None
        assert rules.rate_for(name, props, multiplier=floor) == rate * floor
