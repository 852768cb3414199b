"""The estimators the metrics state next to their SQL, as pure functions (no I/O).

- Weighted total: each stored event stands for `1 / sample_rate` events (Horvitz-Thompson).
- Reached: a player who reached a step is counted with weight `1 / max(sample_rate)` over the
  step's stored events. Sampling is decided per player and cohort (PROTOCOL.md §2), so a
  player's events of one cohort are kept exactly when the player's bucket is under the
  largest rate among them: that rate *is* the probability of seeing the player at all.
- Ratio of totals: a per-hour rate is a weighted total over the exact play time of the same
  players (sessions are never sampled), never weighted XP over the hours of a subset.
- Proportions come with a Wilson score interval (95 % unless told).
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["Z95", "normal_interval", "ratio", "wilson"]

Z95: Final = 1.959963984540054
"""The two-sided 95 % normal quantile."""


def wilson(successes: float, trials: float, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of successes/trials, clamped to [0, 1].

    Weighted (estimated) counts are accepted as they are; no trials gives (0, 1), the
    interval that claims nothing.
    """
    if trials <= 0:
        return (0.0, 1.0)
    p = min(1.0, max(0.0, successes / trials))
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # The interval always holds p; clamp to it so rounding cannot leave p just outside
    # (at p = 0 the lower bound is 0 in exact arithmetic but can come out as 1e-19).
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def normal_interval(total: float, variance: float, *, z: float = Z95) -> tuple[float, float]:
    """total ± z·sqrt(variance), floored at 0: the interval of a weighted (estimated) total."""
    half = z * (max(0.0, variance) ** 0.5)
    return (max(0.0, total - half), total + half)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return numerator / denominator
