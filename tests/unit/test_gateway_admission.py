"""Admission of an envelope into the ingest queue: room, then queueing delay (pure)."""

from __future__ import annotations

import pytest

from gameplay_analytics.runtime.gateway import admission
from gameplay_analytics.runtime.gateway.admission import (
    DrainRate,
    QueueState,
    RetryLine,
    refusal,
    retry_after_ms,
)


def state(depth: int = 0, head_wait_s: float = 0.0, **kw: bool) -> QueueState:
    return QueueState(depth=depth, capacity=100, head_wait_s=head_wait_s, **kw)


def test_an_idle_queue_takes_anything_even_larger_than_itself() -> None:
    assert refusal(state(), 20, target_s=0.1) is None
    assert refusal(state(), 500, target_s=0.1) is None


@pytest.mark.parametrize(
    ("queue", "events", "expected"),
    [
        (state(depth=80), 20, None),  # exactly full after it
        (state(depth=81), 20, admission.FULL),
        (state(depth=99), 1, None),
        (state(depth=100), 1, admission.FULL),
    ],
)
def test_room_bounds_the_queue(queue: QueueState, events: int, expected: str | None) -> None:
    assert refusal(queue, events, target_s=0.1) == expected


@pytest.mark.parametrize(
    ("head_wait_s", "target_s", "expected"),
    [
        (0.05, 0.1, None),
        (0.1, 0.1, None),  # at the target: still taken
        (0.11, 0.1, admission.DELAY),
        (3.0, 0.1, admission.DELAY),
        (3.0, 0.0, None),  # target 0: the delay rule is off
    ],
)
def test_a_standing_queue_refuses_by_delay_with_room_left(
    head_wait_s: float, target_s: float, expected: str | None
) -> None:
    assert refusal(state(depth=10, head_wait_s=head_wait_s), 1, target_s=target_s) == expected


def test_a_wait_with_a_free_write_slot_is_the_loop_not_the_store() -> None:
    late = QueueState(depth=10, capacity=100, head_wait_s=3.0, store_busy=False)
    assert refusal(late, 1, target_s=0.1) is None


def test_draining_and_disconnected_come_first() -> None:
    assert refusal(state(draining=True), 1, target_s=0.1) == admission.DRAINING
    assert refusal(state(connected=False), 1, target_s=0.1) == admission.UNAVAILABLE
    full_and_late = state(depth=100, head_wait_s=9.0, connected=False)
    assert refusal(full_and_late, 1, target_s=0.1) == admission.UNAVAILABLE


@pytest.mark.parametrize(
    ("reason", "depth", "drain_per_s", "expected"),
    [
        (admission.FULL, 5000, 25_000.0, 200),  # the queue drains in 200 ms
        (admission.DELAY, 5000, 10_000.0, 500),
        (admission.FULL, 100, 50_000.0, admission.RETRY_FLOOR_MS),  # never below one flush
        (admission.FULL, 5000, 1_000.0, 1000),  # never above the setting
        (admission.FULL, 5000, None, admission.RETRY_FLOOR_MS),  # no drain measured yet
        (admission.FULL, 5000, 0.0, 1000),  # the store drained nothing while busy
        (admission.UNAVAILABLE, 0, 25_000.0, 1000),  # the store is away: the full wait
        (admission.DRAINING, 10, 25_000.0, 1000),
    ],
)
def test_the_retry_hint_is_about_the_time_the_queue_needs_to_drain(
    reason: str, depth: int, drain_per_s: float | None, expected: int
) -> None:
    assert retry_after_ms(reason, depth, drain_per_s, ceiling_ms=1000) == expected


def test_the_drain_rate_counts_its_first_samples_in_full() -> None:
    drain = DrainRate(tau_s=1.0)
    assert drain.per_s is None  # nothing measured yet: retry_after_ms sends its floor
    drain.sample(20_000, 0.1)
    assert drain.per_s == pytest.approx(200_000)  # not 10 % of it, as an average from zero
    drain.sample(0, 0.0)  # no time passed: no sample
    assert drain.per_s == pytest.approx(200_000)
    for _ in range(50):  # then it follows a change with its time constant
        drain.sample(10_000, 0.1)
    assert drain.per_s == pytest.approx(100_000, rel=0.01)


def test_refused_envelopes_are_told_to_come_back_one_after_another() -> None:
    line = RetryLine()
    # The queue drains in 200 ms, an average envelope takes 10 ms: a burst of refusals is
    # spread from the drain time on, one envelope's turn apart, not all sent back together.
    hints = [line.place_ms(50.0, 200, 0.01, ceiling_ms=1000) for _ in range(5)]
    assert hints == [200, 210, 220, 230, 240]
    # Up to the ceiling, where the line stops growing.
    more = [line.place_ms(50.0, 200, 0.01, ceiling_ms=1000) for _ in range(200)]
    assert max(more) == more[-1] == 1000
    # Once the line has passed, a refusal waits the queue's own hint again, never below the floor.
    assert line.place_ms(60.0, 200, 0.01, ceiling_ms=1000) == 200
    floor = retry_after_ms(admission.FULL, 0, 50_000.0, ceiling_ms=1000)
    assert line.place_ms(70.0, floor, 0.01, ceiling_ms=1000) == admission.RETRY_FLOOR_MS
