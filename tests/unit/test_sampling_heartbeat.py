"""The adaptive heartbeat controller: halve on CPU, double after sustained combat, else hold."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.sampling import HeartbeatConfig, HeartbeatState, LoadSignals, step

CONFIG = HeartbeatConfig(min_rate=0.01, max_rate=1.0)


def run(
    state: HeartbeatState, *readings: tuple[float | None, float | None, float]
) -> HeartbeatState:
    for cpu, combat, at in readings:
        state = step(state, LoadSignals(gateway_cpu=cpu, combat_load=combat, at=at), config=CONFIG)
    return state


def test_cpu_over_target_halves_and_says_why() -> None:
    state = run(HeartbeatState(rate=0.2), (0.8, 0.1, 0.0))
    assert state.rate == 0.1
    assert (
        state.reason == "gateway CPU 80% is over the 65% target: heartbeat sampling lowered to 10%"
    )


def test_cpu_halves_down_to_the_minimum_and_no_further() -> None:
    state = HeartbeatState(rate=0.1)
    rates = []
    for t in range(6):
        state = run(state, (0.95, None, float(t)))
        rates.append(state.rate)
    assert rates == [0.05, 0.025, 0.0125, 0.01, 0.01, 0.01]
    assert "already at its minimum of 1%" in state.reason


def test_sustained_combat_doubles_once_per_hold_period() -> None:
    state = HeartbeatState(rate=0.1)
    state = run(state, (0.3, 0.9, 0.0), (0.3, 0.9, 60.0))
    assert state.rate == 0.1
    assert state.combat_high_since == 0.0
    assert "for 60 s of 120 s" in state.reason
    state = run(state, (0.3, 0.9, 120.0))
    assert state.rate == 0.2
    assert state.reason == (
        "combat load has been over 85% for 120 s with gateway CPU at 30%: "
        "heartbeat sampling raised to 20%"
    )
    state = run(state, (0.3, 0.9, 180.0))
    assert state.rate == 0.2  # the timer restarted at 120 s
    state = run(state, (0.3, 0.9, 240.0))
    assert state.rate == 0.4


def test_combat_must_stay_high_continuously() -> None:
    state = run(HeartbeatState(rate=0.1), (0.3, 0.9, 0.0), (0.3, 0.5, 100.0), (0.3, 0.9, 110.0))
    state = run(state, (0.3, 0.9, 200.0))
    assert state.rate == 0.1  # high since 110 s only
    assert run(state, (0.3, 0.9, 230.0)).rate == 0.2


def test_a_missing_combat_reading_breaks_the_streak() -> None:
    state = run(HeartbeatState(rate=0.1), (0.3, 0.9, 0.0), (0.3, None, 60.0), (0.3, 0.9, 120.0))
    assert state.rate == 0.1
    assert state.combat_high_since == 120.0


def test_cpu_wins_over_combat_and_restarts_the_streak() -> None:
    state = run(HeartbeatState(rate=0.4), (0.3, 0.9, 0.0), (0.9, 0.9, 119.0))
    assert state.rate == 0.2
    assert state.combat_high_since == 119.0
    assert run(state, (0.3, 0.9, 125.0)).rate == 0.2


def test_doubling_stops_at_the_maximum() -> None:
    state = run(HeartbeatState(rate=0.8), (0.1, 1.0, 0.0), (0.1, 1.0, 120.0))
    assert state.rate == 1.0
    state = run(state, (0.1, 1.0, 240.0))
    assert state.rate == 1.0
    assert "already at its maximum of 100%" in state.reason


def test_calm_load_holds() -> None:
    state = run(HeartbeatState(rate=0.1), (0.5, 0.4, 0.0))
    assert state.rate == 0.1
    assert state.reason == (
        "gateway CPU 50% and combat load 40% are within bounds: holding heartbeat sampling at 10%"
    )


@pytest.mark.parametrize(
    ("cpu", "combat", "missing"),
    [
        (None, 0.9, "gateway CPU"),
        (math.nan, 0.1, "gateway CPU"),
        (None, None, "gateway CPU"),
        (0.3, None, "combat load"),
        (0.3, math.nan, "combat load"),
    ],
)
def test_missing_signals_hold(cpu: float | None, combat: float | None, missing: str) -> None:
    state = run(HeartbeatState(rate=0.1), (cpu, combat, 0.0))
    assert state.rate == 0.1
    assert state.reason == f"no signal: {missing} is unknown, holding heartbeat sampling at 10%"


def test_cpu_over_target_sheds_even_without_combat_figures() -> None:
    assert run(HeartbeatState(rate=0.1), (0.9, None, 0.0)).rate == 0.05


def test_start_clamps_into_bounds() -> None:
    assert HeartbeatState.start(5.0, CONFIG).rate == 1.0
    assert HeartbeatState.start(0.1, CONFIG).reason == "starting at the configured rate of 10%"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_rate": 0.5, "max_rate": 0.1},
        {"min_rate": 0.0, "max_rate": 0.1},
        {"min_rate": 0.1, "max_rate": 1.5},
        {"min_rate": 0.1, "max_rate": 0.5, "step_factor": 1.0},
    ],
)
def test_config_rejects_impossible_bounds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HeartbeatConfig(**kwargs)


_signal = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(
    st.floats(0.001, 0.5),
    st.floats(0.0, 1.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.tuples(_signal, _signal, st.floats(0.0, 1e4)), max_size=40),
)
def test_the_rate_never_leaves_its_bounds(
    low: float, width: float, start: float, readings: list[tuple[float | None, float | None, float]]
) -> None:
    config = HeartbeatConfig(min_rate=low, max_rate=min(1.0, low + width), combat_hold_s=30.0)
    state = HeartbeatState(rate=start)
    at = 0.0
    for cpu, combat, dt in readings:
        at += dt
        state = step(state, LoadSignals(gateway_cpu=cpu, combat_load=combat, at=at), config=config)
        assert config.min_rate <= state.rate <= config.max_rate
        assert state.reason
