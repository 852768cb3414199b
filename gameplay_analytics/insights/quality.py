"""The nightly data-quality check: sessions the gateways authenticated vs sessions stored.

Pure: `SessionCheck` holds one day's counts and says the variance, the verdict and the
table; `metrics` turns it into the gauges the alert reads. The counts come from
`runtime/gateway/ledger.py` (gateways) and `analytics_sessions` (storage); the command in
`commands/quality.py` reads them.

The variance is |gateway − stored| / gateway over sessions with analytics consent (opted-out
sessions store nothing by design). Lost session events (a session_start that never reached
storage) make it grow; so do reconnects that resume a session without a new session_start,
which is why the threshold is a few percent, not zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from prometheus_client import CollectorRegistry, Gauge

from gameplay_analytics.operator.alerts import SESSION_VARIANCE_THRESHOLD as VARIANCE_THRESHOLD

__all__ = ["VARIANCE_THRESHOLD", "SessionCheck", "metrics"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionCheck:
    day: dt.date
    gateway: int  # authenticated sessions with analytics consent
    stored: int  # rows of analytics_sessions started that day
    opted_out: int = 0
    threshold: float = VARIANCE_THRESHOLD

    @property
    def variance(self) -> float:
        if self.gateway == 0:
            return 0.0 if self.stored == 0 else 1.0
        return abs(self.gateway - self.stored) / self.gateway

    @property
    def ok(self) -> bool:
        return self.variance <= self.threshold

    def table(self) -> str:
        rows = [
            ("day", self.day.isoformat()),
            ("gateway sessions (analytics consent)", str(self.gateway)),
            ("gateway sessions (opted out, not stored)", str(self.opted_out)),
            ("stored sessions (analytics_sessions)", str(self.stored)),
            ("variance", f"{self.variance:.2%}"),
            ("threshold", f"{self.threshold:.2%}"),
            ("verdict", "ok" if self.ok else "ALERT: variance over the threshold"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def metrics(check: SessionCheck, registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """The check as gauges in a registry of their own (pushed, or written as a textfile)."""
    registry = registry if registry is not None else CollectorRegistry()
    variance = Gauge(
        "analytics_quality_session_variance_ratio",
        "|gateway - stored| / gateway sessions of the last checked day",
        registry=registry,
    )
    sessions = Gauge(
        "analytics_quality_sessions",
        "Sessions of the last checked day, by source (gateway, stored, opted_out)",
        ["source"],
        registry=registry,
    )
    checked = Gauge(
        "analytics_quality_checked_day_timestamp_seconds",
        "Start (UTC) of the day the last check covered",
        registry=registry,
    )
    variance.set(check.variance)
    sessions.labels("gateway").set(check.gateway)
    sessions.labels("stored").set(check.stored)
    sessions.labels("opted_out").set(check.opted_out)
    checked.set(dt.datetime.combine(check.day, dt.time(), dt.UTC).timestamp())
    return registry
