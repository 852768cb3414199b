"""The committer's test-only fault hook (FAULT_COMMIT_RATE): off by default, and when on it
raises InjectedFault, which the committer handles as any unexpected error (tests/chaos)."""

from __future__ import annotations

import pytest

from gameplay_analytics.runtime.aggregator.committer import Committer, InjectedFault
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings


def _committer(**settings: object) -> Committer:
    return Committer(
        pool=None,  # type: ignore[arg-type]  # the hook does no I/O
        js=None,  # type: ignore[arg-type]
        settings=AggregatorSettings(**settings),  # type: ignore[arg-type]
        metrics=AggregatorMetrics(),
        stop_deadline=lambda: None,
    )


def test_off_by_default() -> None:
    assert AggregatorSettings().fault_commit_rate == 0.0
    committer = _committer()
    for _ in range(1000):
        committer._fault("before storing")


def test_rate_one_always_raises_naming_the_point() -> None:
    with pytest.raises(InjectedFault, match="after storing"):
        _committer(fault_commit_rate=1.0)._fault("after storing")


def test_the_rate_is_bounded() -> None:
    with pytest.raises(ValueError, match="fault_commit_rate"):
        AggregatorSettings(fault_commit_rate=1.5)
