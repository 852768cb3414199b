"""A load run's report: one table for people, one PNG over time, one dict for machines.

Rates come from deltas between the watch's samples; pipeline totals (received, drops) are
deltas over the run, so a gateway that served traffic before keeps its history out of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gameplay_analytics.loadgen.harness import LoadProfile, LoadResult
from gameplay_analytics.loadgen.observe import Sample
from gameplay_analytics.loadgen.stages import StageLatency
from gameplay_analytics.loadgen.store import Latency, Reconciliation

__all__ = ["LoadReport", "Rates", "plot", "rates", "write_table"]

_TABLE_EVERY_S = 5


@dataclass
class LoadReport:
    profile: LoadProfile
    result: LoadResult
    samples: list[Sample]
    latency: Latency | None
    reconciliation: Reconciliation | None
    drain_s: float
    stages: list[StageLatency] = field(default_factory=list)  # with the target's NATS URL

    @property
    def ok(self) -> bool:
        """The run's verdict: every acked event stored exactly once."""
        return self.reconciliation is not None and self.reconciliation.ok

    def delta(self, name: str) -> float | None:
        values = [getattr(s, name) for s in self.samples if getattr(s, name) is not None]
        return values[-1] - values[0] if len(values) >= 2 else None

    def drops_by_reason(self) -> dict[str, float]:
        """Gateway drops over the run per reason; `backpressure` counts refused envelopes'
        events, which the SDKs keep and resend (so they also count again as received)."""
        if len(self.samples) < 2:
            return {}
        first, last = self.samples[0].drops_by_reason, self.samples[-1].drops_by_reason
        deltas = {k: v - first.get(k, 0.0) for k, v in last.items()}
        return {k: v for k, v in sorted(deltas.items()) if v}

    def batch_ms(self) -> float | None:
        """The aggregator's mean batch time over the run (fetch returned → acked), in ms."""
        seconds, batches = self.delta("batch_seconds"), self.delta("batches")
        return round(1000 * seconds / batches, 1) if seconds is not None and batches else None

    def summary(self) -> dict[str, Any]:
        """Flat figures for benches and scripts."""
        r, lat, rec = self.result, self.latency, self.reconciliation
        seconds = max(1e-9, r.ended - r.started)
        gateway = [x for x in rates(self.samples) if x.gateway_cpu is not None]
        return {
            "players": len(r.records),
            "seconds": round(seconds, 1),
            "tracked": r.total("tracked"),
            "offered": r.total("buffered"),
            "offered_per_s": round(r.total("buffered") / seconds),
            "acked": r.total("events_acked"),
            "received": self.delta("received"),
            "drops": self.delta("drops"),
            "drops_by_reason": self.drops_by_reason(),
            "backpressure_replies": r.total("backpressure"),
            "rate_limited_replies": r.total("rate_limited"),
            "stored": rec.stored if rec else None,
            "missing": rec.missing if rec else None,
            "doubled": rec.doubled if rec else None,
            "p50_ms": round(lat.p50_ms, 1) if lat else None,
            "p95_ms": round(lat.p95_ms, 1) if lat else None,
            "p99_ms": round(lat.p99_ms, 1) if lat else None,
            "gateway_cpu_pct": round(100 * _mean([x.gateway_cpu or 0 for x in gateway]), 1)
            if gateway
            else None,
            "queue_depth_max": max((s.queue_depth or 0 for s in self.samples), default=None),
            "aggregator_batch_ms": self.batch_ms(),
            "stages_ms": {x.stage: {"p50": x.p50_ms, "p95": x.p95_ms} for x in self.stages},
            "ok": self.ok,
        }


@dataclass(frozen=True)
class Rates:
    """Per-second rates between two consecutive samples; `t` is seconds since the first."""

    t: float
    offered: float
    acked: float
    persisted: float | None
    gateway_cpu: float | None  # cores busy (1.0 = one core)
    loadgen_cpu: float
    queue_depth: float | None
    drops: float | None
    loop_lag_s: float


def rates(samples: Sequence[Sample]) -> list[Rates]:
    out = []
    for before, after in itertools.pairwise(samples):
        dt = after.at - before.at
        if dt <= 0:
            continue
        out.append(
            Rates(
                t=after.at - samples[0].at,
                offered=(after.offered - before.offered) / dt,
                acked=(after.acked - before.acked) / dt,
                persisted=_rate(before.persisted, after.persisted, dt),
                gateway_cpu=_rate(before.gateway_cpu_s, after.gateway_cpu_s, dt),
                loadgen_cpu=(after.loadgen_cpu_s - before.loadgen_cpu_s) / dt,
                queue_depth=after.queue_depth,
                drops=_rate(before.drops, after.drops, dt),
                loop_lag_s=after.loop_lag_s,
            )
        )
    return out


def write_table(report: LoadReport, out: TextIO) -> None:
    r, p, w = report.result, report.profile, out.write
    seconds = max(1e-9, r.ended - r.started)
    n = "{:>12,.0f}".format
    w("\n── gameplay-analytics load report " + "─" * 45 + "\n")
    style = f"steady {p.steady_rate:g} events/s each" if p.steady_rate else f"pace {p.pace:g}"
    w(
        f"players {len(r.records)} ({sum(x.opted_out for x in r.records)} opted out), "
        f"{p.seconds:g} s each, {style}; {sum(x.sessions for x in r.records):,} sessions, "
        f"{sum(max(0, x.connections - x.sessions) for x in r.records):,} reconnects; "
        f"run took {seconds:.0f} s + {report.drain_s:.0f} s to drain\n\n"
    )
    rec = report.reconciliation
    rows: list[tuple[str, float | None]] = [
        ("tracked by the SDKs", r.total("tracked")),
        ("  sampled out at the source", r.total("sampled_out")),
        ("  withheld by consent", r.total("opted_out")),
        ("offered (kept by the SDKs)", r.total("buffered")),
        ("received by the gateway (valid, incl. resends)", report.delta("received")),
        ("  dropped by the gateway", report.delta("drops")),
        *((f"    {reason}", value) for reason, value in report.drops_by_reason().items()),
        ("  rejected (→ DLQ)", r.total("events_rejected")),
        ("acked to the SDKs as stored", r.total("events_acked")),
        ("stored in Postgres", rec.stored if rec else None),
        ("envelopes resent after reconnects", r.total("envelopes_resent")),
        ("backpressure replies (envelopes refused)", r.total("backpressure")),
        ("rate_limited replies", r.total("rate_limited")),
    ]
    w(f"  {'events':<44}{'total':>12}{'per s':>10}\n")
    for label, value in rows:
        if value is None:
            w(f"  {label:<44}{'n/a':>12}\n")
        else:
            w(f"  {label:<44}{n(value)}{value / seconds:>10,.0f}\n")
    lat = report.latency
    if lat is not None:
        stand_in = "" if lat.column == "stored_at" else f" (stand-in: {lat.column})"
        w(
            f"\nend-to-end latency, track() → Postgres{stand_in}, {lat.events:,} events\n"
            f"  p50 {lat.p50_ms:,.0f} ms   p95 {lat.p95_ms:,.0f} ms   "
            f"p99 {lat.p99_ms:,.0f} ms   max {lat.max_ms:,.0f} ms\n"
        )
    _write_stages(report, w)
    series = rates(report.samples)
    gateway = [x.gateway_cpu for x in series if x.gateway_cpu is not None]
    depth = [x.queue_depth for x in series if x.queue_depth is not None]
    w("\nresources\n")
    if gateway:
        w(
            f"  gateway CPU        mean {100 * _mean(gateway):5.0f} %   "
            f"max {100 * max(gateway):5.0f} %\n"
        )
    if depth:
        w(f"  gateway queue      mean {_mean(depth):7,.0f}   max {max(depth):7,.0f} events\n")
    if series:
        w(
            f"  load generator CPU mean {100 * _mean([x.loadgen_cpu for x in series]):5.0f} %   "
            f"event-loop lag max {1000 * max(x.loop_lag_s for x in series):,.0f} ms\n"
        )
    _write_over_time(report, series, w)
    if rec is None:
        w("\nreconciliation: skipped (no Postgres DSN)\n")
    else:
        w(
            f"\nreconciliation: every acked event stored exactly once — "
            f"{'yes' if rec.ok else 'NO'} (expected {rec.expected:,}, missing {rec.missing:,}, "
            f"doubled {rec.doubled:,}; stored without an ack {rec.unacked_stored:,})\n"
        )
    unflushed = sum(not x.flushed for x in r.records)
    if unflushed:
        w(f"  {unflushed} players stopped with events not yet acked (flush bound reached)\n")


def _write_stages(report: LoadReport, w: Any) -> None:
    if not report.stages:
        return
    w("  by stage (a sample of stream messages; loadgen/stages.py says what each covers):\n")
    for x in report.stages:
        w(f"    {x.stage:<11} p50 {x.p50_ms:7,.1f} ms   p95 {x.p95_ms:7,.1f} ms   ({x.events:,})\n")
    batch = report.batch_ms()
    if batch is not None:
        w(f"    aggregator batch, fetch returned → acked: mean {batch:,.1f} ms\n")


def _write_over_time(report: LoadReport, series: list[Rates], w: Any) -> None:
    p95_by_second = {}
    if report.latency is not None:
        p95_by_second = {int(at): p95 for at, _, _, p95, _ in report.latency.series}
    start = report.samples[0].at if report.samples else 0.0
    w(
        f"\n  {'t (s)':>6}{'offered/s':>11}{'acked/s':>10}{'stored/s':>10}{'queue':>8}"
        f"{'drops/s':>9}{'gw CPU':>8}{'p95 ms':>9}\n"
    )
    for i in range(0, len(series), _TABLE_EVERY_S):
        chunk = series[i : i + _TABLE_EVERY_S]
        last = chunk[-1]
        stored = [x.persisted for x in chunk if x.persisted is not None]
        cpu = [x.gateway_cpu for x in chunk if x.gateway_cpu is not None]
        drops = [x.drops for x in chunk if x.drops is not None]
        second = int(start + last.t)
        p95s = [p95_by_second[s] for s in range(second - len(chunk), second) if s in p95_by_second]
        w(
            f"  {last.t:>6.0f}{_mean([x.offered for x in chunk]):>11,.0f}"
            f"{_mean([x.acked for x in chunk]):>10,.0f}"
            f"{_cell(_mean(stored) if stored else None, 10)}"
            f"{_cell(last.queue_depth, 8)}"
            f"{_cell(_mean(drops) if drops else None, 9)}"
            f"{_cell(100 * _mean(cpu) if cpu else None, 8, '%')}"
            f"{_cell(max(p95s) if p95s else None, 9)}\n"
        )


def plot(report: LoadReport, path: Path) -> Path:
    """Four panels over time: throughput, latency, gateway queue and drops, CPU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = rates(report.samples)
    start = report.samples[0].at if report.samples else 0.0
    t = [x.t for x in series]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    ax = axes[0]
    ax.plot(t, [x.offered for x in series], label="offered (kept by SDKs)")
    ax.plot(t, [x.acked for x in series], label="acked by gateway")
    if any(x.persisted is not None for x in series):
        ax.plot(t, [x.persisted or 0 for x in series], label="stored (aggregator)")
    ax.set_ylabel("events/s")
    ax.legend(loc="upper right")
    ax.set_title("gameplay-analytics load run")
    ax = axes[1]
    if report.latency is not None and report.latency.series:
        lt = [at - start for at, *_ in report.latency.series]
        for index, label in ((2, "p50"), (3, "p95"), (4, "p99")):
            ax.plot(lt, [row[index] for row in report.latency.series], label=label)
        ax.legend(loc="upper right")
    ax.set_ylabel("track() → stored, ms")
    ax = axes[2]
    ax.plot(t, [x.queue_depth or 0 for x in series], label="queue depth (events)")
    ax.plot(t, [x.drops or 0 for x in series], label="drops/s")
    ax.set_ylabel("gateway")
    ax.legend(loc="upper right")
    ax = axes[3]
    ax.plot(t, [100 * (x.gateway_cpu or 0) for x in series], label="gateway")
    ax.plot(t, [100 * x.loadgen_cpu for x in series], label="load generator")
    ax.set_ylabel("CPU % (100 = 1 core)")
    ax.set_xlabel("seconds since start")
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _rate(before: float | None, after: float | None, dt: float) -> float | None:
    return None if before is None or after is None else (after - before) / dt


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _cell(value: float | None, width: int, suffix: str = "") -> str:
    if value is None:
        return f"{'–':>{width}}"
    return f"{value:>{width - len(suffix)},.0f}{suffix}"
