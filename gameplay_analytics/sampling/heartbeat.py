"""The adaptive heartbeat controller: one pure step from load signals to a sampling rate.

The operator calls `step` on a timer with Prometheus figures and publishes the new rate; the
`reason` is a sentence for `kubectl get samplingpolicies`.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["HeartbeatConfig", "HeartbeatState", "LoadSignals", "step"]


@dataclasses.dataclass(frozen=True, slots=True)
class HeartbeatConfig:
    """Bounds and thresholds; `min_rate`/`max_rate` come from the rules' adaptive bounds.

    CPU is the gateways' mean CPU use over their limit, combat load the share of players in
    combat; both in [0, 1]. The rate halves when CPU is over target and doubles only after
    combat load has stayed high for a whole `combat_hold_s`, so it sheds load fast and adds
    it slowly.
    """

    min_rate: float
    max_rate: float
    cpu_target: float = 0.65
    combat_threshold: float = 0.85
    combat_hold_s: float = 120.0
    step_factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_rate <= self.max_rate <= 1.0:
            raise ValueError(
                f"heartbeat bounds must satisfy 0 < min_rate <= max_rate <= 1, "
                f"got [{self.min_rate}, {self.max_rate}]"
            )
        if not self.step_factor > 1.0:
            raise ValueError(f"step_factor must be above 1, got {self.step_factor}")
        if not self.combat_hold_s >= 0.0:
            raise ValueError(f"combat_hold_s must be ≥ 0, got {self.combat_hold_s}")

    def clamp(self, rate: float) -> float:
        if math.isnan(rate):
            return self.min_rate
        return min(self.max_rate, max(self.min_rate, rate))


@dataclasses.dataclass(frozen=True, slots=True)
class LoadSignals:
    """One reading of the load: None (or NaN) where Prometheus had no figure; `at` in seconds."""

    gateway_cpu: float | None
    combat_load: float | None
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class HeartbeatState:
    """The controller's memory between steps: the rate and since when combat has been high."""

    rate: float
    combat_high_since: float | None = None
    reason: str = "starting at the configured rate"

    @classmethod
    def start(cls, rate: float, config: HeartbeatConfig) -> HeartbeatState:
        clamped = config.clamp(rate)
        return cls(rate=clamped, reason=f"starting at the configured rate of {_pct(clamped)}")


def step(state: HeartbeatState, signals: LoadSignals, *, config: HeartbeatConfig) -> HeartbeatState:
    """The next state for one reading of the load; the rate never leaves the config's bounds."""
    rate = config.clamp(state.rate)
    cpu = _known(signals.gateway_cpu)
    combat = _known(signals.combat_load)
    now = signals.at

    # A missing combat reading breaks the streak: "continuously high" must have been seen.
    high = combat is not None and combat > config.combat_threshold
    since = None
    if high:
        since = state.combat_high_since if state.combat_high_since is not None else now

    if cpu is not None and cpu > config.cpu_target:
        new = config.clamp(rate / config.step_factor)
        # Shedding load restarts the combat streak: doubling right after halving would flap.
        return HeartbeatState(
            rate=new,
            combat_high_since=now if high else None,
            reason=(
                f"gateway CPU {_pct(cpu)} is over the {_pct(config.cpu_target)} target: "
                + (
                    f"heartbeat sampling lowered to {_pct(new)}"
                    if new < rate
                    else f"heartbeat sampling already at its minimum of {_pct(new)}"
                )
            ),
        )
    if cpu is None:
        return HeartbeatState(
            rate=rate,
            combat_high_since=since,
            reason=f"no signal: gateway CPU is unknown, holding heartbeat sampling at {_pct(rate)}",
        )
    if combat is None:
        return HeartbeatState(
            rate=rate,
            combat_high_since=None,
            reason=f"no signal: combat load is unknown, holding heartbeat sampling at {_pct(rate)}",
        )
    if since is not None and now - since >= config.combat_hold_s:
        new = config.clamp(rate * config.step_factor)
        held = _duration(now - since)
        outcome = (
            f"heartbeat sampling raised to {_pct(new)}"
            if new > rate
            else f"heartbeat sampling already at its maximum of {_pct(new)}"
        )
        return HeartbeatState(
            rate=new,
            combat_high_since=now,  # the next doubling needs another full hold period
            reason=(
                f"combat load has been over {_pct(config.combat_threshold)} for {held} "
                f"with gateway CPU at {_pct(cpu)}: {outcome}"
            ),
        )
    if since is not None:
        reason = (
            f"combat load {_pct(combat)} is over {_pct(config.combat_threshold)} for "
            f"{_duration(now - since)} of {_duration(config.combat_hold_s)}: "
            f"holding heartbeat sampling at {_pct(rate)}"
        )
    else:
        reason = (
            f"gateway CPU {_pct(cpu)} and combat load {_pct(combat)} are within bounds: "
            f"holding heartbeat sampling at {_pct(rate)}"
        )
    return HeartbeatState(rate=rate, combat_high_since=since, reason=reason)


def _known(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _duration(seconds: float) -> str:
    return f"{max(0.0, seconds):.0f} s"
