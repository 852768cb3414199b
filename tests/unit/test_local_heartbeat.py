"""`up`'s heartbeat controller reads its gateway's own metrics: CPU from the growth of the
process' CPU seconds, combat load from the gateway's gauges."""

from __future__ import annotations

import pytest

from gameplay_analytics.local.heartbeat import CpuReading, signals_from_metrics


def _text(cpu: float, sessions: int, combat: int) -> str:
    return (
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu}\n"
        "# TYPE analytics_sessions_active gauge\n"
        f"analytics_sessions_active {sessions}\n"
        "# TYPE analytics_players_in_combat gauge\n"
        f"analytics_players_in_combat {combat}\n"
    )


def test_first_reading_has_no_cpu_then_the_ratio_of_cores() -> None:
    first, kept = signals_from_metrics(_text(10.0, 40, 30), now=100.0, previous=None, cores=2)
    assert first.gateway_cpu is None and first.combat_load == pytest.approx(0.75)
    assert kept == CpuReading(10.0, 100.0)
    second, _ = signals_from_metrics(_text(25.0, 40, 10), now=110.0, previous=kept, cores=2)
    assert second.gateway_cpu == pytest.approx(0.75)  # 15 CPU-s in 10 s on 2 cores
    assert second.combat_load == pytest.approx(0.25)


def test_no_sessions_means_no_combat_signal() -> None:
    signals, _ = signals_from_metrics(_text(1.0, 0, 0), now=1.0, previous=None, cores=1)
    assert signals.combat_load is None
