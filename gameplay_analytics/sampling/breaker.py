"""The gateway's circuit breaker: queue fill in, client sampling multiplier out.

A pure state machine: the gateway passes the fill ratio and the time, and sends a `sampling`
frame with the new multiplier whenever `observe` returns one.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["BreakerConfig", "CircuitBreaker"]


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When to thin and when to recover (DESIGN.md: over 80 % for 30 s, tell clients).

    Fill ratios are the queue depth over its capacity. Each trip multiplies by `step`, down to
    `floor`; each recovery divides by it, up to 1.0. Recovery needs the queue well below the
    trip point (`recover_below`) so that the multiplier does not flap around the threshold.
    """

    threshold: float = 0.8
    hold_s: float = 30.0
    recover_below: float = 0.5
    recover_hold_s: float = 10.0
    step: float = 0.5
    floor: float = 0.125

    def __post_init__(self) -> None:
        if not 0.0 < self.step < 1.0:
            raise ValueError(f"step must be in (0, 1), got {self.step}")
        if not 0.0 < self.floor <= 1.0:
            raise ValueError(f"floor must be in (0, 1], got {self.floor}")
        if not self.recover_below <= self.threshold:
            raise ValueError(
                f"recover_below ({self.recover_below}) must not be above the threshold "
                f"({self.threshold})"
            )
        if self.hold_s < 0.0 or self.recover_hold_s < 0.0:
            raise ValueError("hold_s and recover_hold_s must be ≥ 0")


class CircuitBreaker:
    """Tracks how long the queue has been full or empty; no clock of its own."""

    __slots__ = ("_config", "_level", "_over_since", "_under_since")

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self._config = config or BreakerConfig()
        # The multiplier is step ** level (floored), so that a trip and a recovery are exact
        # inverses and a run of them always lands back on 1.0, not 0.9999….
        self._level = 0
        self._over_since: float | None = None
        self._under_since: float | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker(multiplier={self.multiplier})"

    @property
    def config(self) -> BreakerConfig:
        return self._config

    @property
    def multiplier(self) -> float:
        return max(self._config.floor, self._config.step**self._level)

    def observe(self, fill: float, now: float) -> float | None:
        """Feed one reading; returns the new multiplier when it changed, else None.

        A NaN reading carries no information and changes nothing.
        """
        config = self._config
        if math.isnan(fill):
            return None
        if fill > config.threshold:
            self._under_since = None
            if self._over_since is None:
                self._over_since = now
            if now - self._over_since >= config.hold_s and self.multiplier > config.floor:
                self._over_since = now  # the next trip needs another full hold period
                self._level += 1
                return self.multiplier
            return None
        self._over_since = None
        if fill >= config.recover_below:
            self._under_since = None
            return None
        if self._under_since is None:
            self._under_since = now
        if now - self._under_since >= config.recover_hold_s and self._level > 0:
            self._under_since = now
            self._level -= 1
            return self.multiplier
        return None
