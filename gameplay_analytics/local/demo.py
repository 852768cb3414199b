"""`gameplay-analytics demo`: the local stack, a few hundred synthetic players, then a report.

The report reconciles exactly: every event a player's SDK saw acknowledged must be in
Postgres once, and the warm store read back with DuckDB must hold the same rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import asyncpg

from gameplay_analytics.insights import core, definitions, render, report, stores, warehouse
from gameplay_analytics.loadgen.harness import LoadProfile, LoadResult, run_load
from gameplay_analytics.loadgen.observe import metric_totals
from gameplay_analytics.local.geoipdb import build_demo_geoip, geoip_env
from gameplay_analytics.local.stack import LocalStack, StackConfig
from gameplay_analytics.runtime.storage import warm_sessions
from gameplay_analytics.runtime.storage.warm import ExportedDay, WarmStore

__all__ = ["DemoOutcome", "metric_totals", "run_demo"]

_DRAIN_TIMEOUT_S = 120.0


class DemoOutcome:
    def __init__(self) -> None:
        self.missing = 0
        self.doubled = 0
        self.stored = 0
        self.warm_rows = 0

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.doubled == 0 and self.warm_rows == self.stored


async def run_demo(
    *, data_dir: Path | None, players: int, seconds: float, jwt_secret: str, out: TextIO
) -> DemoOutcome:
    owned = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="gameplay-demo-")) if owned else data_dir
    assert root is not None
    say = _printer(out)
    geoip = build_demo_geoip(root / "geoip" / "demo-city.mmdb")
    say(f"starting nats-server, PostgreSQL, gateway and aggregator in {root} …")
    stack = LocalStack(
        StackConfig(data_dir=root, jwt_secret=jwt_secret, extra_env=geoip_env(geoip))
    )
    started = time.monotonic()
    await asyncio.to_thread(stack.start)
    try:
        say(f"ready in {time.monotonic() - started:.1f} s — {stack.ws_url}")
        profile = LoadProfile(players=players, seconds=seconds, onboarding=True)
        say(f"{players} synthetic players play for {seconds:.0f} s …")
        result = await run_load(
            stack.ws_url,
            jwt_secret=jwt_secret,
            profile=profile,
            state_dir=root / "players",
            progress=_progress(out, profile),
        )
        _end_progress(out)
        say("players done; waiting for the aggregator to store everything …")
        await _drain(stack)
        return await _report(stack, result, out)
    finally:
        await asyncio.to_thread(stack.stop)


async def _drain(stack: LocalStack) -> None:
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        pending = 0.0
        for aggregator in stack.aggregators:
            totals = await asyncio.to_thread(metric_totals, aggregator.metrics_url)
            pending += totals.get("analytics_consumer_lag", 0) + totals.get(
                "analytics_consumer_ack_pending", 0
            )
        quiet = quiet + 1 if pending == 0 else 0
        await asyncio.sleep(1.0)


async def _report(stack: LocalStack, result: LoadResult, out: TextIO) -> DemoOutcome:
    outcome = DemoOutcome()
    assert stack.gateway is not None
    gateway = await asyncio.to_thread(metric_totals, stack.gateway.metrics_url)
    aggregated: dict[str, float] = {}
    for aggregator in stack.aggregators:
        for key, value in (await asyncio.to_thread(metric_totals, aggregator.metrics_url)).items():
            aggregated[key] = aggregated.get(key, 0.0) + value
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        stored_keys = await conn.fetch(
            "SELECT client_guid::text AS guid, seq, count(*) AS n FROM analytics_events "
            "GROUP BY 1, 2"
        )
        rates = await conn.fetch(definitions.SAMPLE_RATES_SQL)
        origins = await conn.fetch(_ORIGINS_SQL)
        days = [
            r["event_day"]
            for r in await conn.fetch("SELECT DISTINCT event_day FROM analytics_events ORDER BY 1")
        ]
    finally:
        await conn.close()
    exported = await _export(stack, days)

    stored = {(r["guid"], r["seq"]): r["n"] for r in stored_keys}
    outcome.stored = sum(stored.values())
    outcome.doubled = sum(n - 1 for n in stored.values() if n > 1)
    exact, partial = result.promised()
    outcome.missing = len(exact - stored.keys())
    outcome.missing += sum(
        max(0, count - sum(1 for seq in seqs if (guid, seq) in stored))
        for guid, seqs, count in partial
    )
    outcome.warm_rows = int(
        warehouse.query(str(stack.warehouse_root), "SELECT count(*) FROM analytics_events")[0][0]
    )

    w = out.write
    n = "{:>12,}".format
    w("\n── gameplay-analytics demo report " + "─" * 45 + "\n")
    w(
        f"players {len(result.records)} ({sum(r.opted_out for r in result.records)} opted out), "
        f"{result.ended - result.started:.0f} s of play\n\n"
    )
    w("events\n")
    rows = [
        ("tracked by the SDKs", result.total("tracked")),
        ("  sampled out at the source", result.total("sampled_out")),
        ("  withheld by consent (opt-out, social)", result.total("opted_out")),
        ("  debounced", result.total("debounced")),
        ("received by the gateway (valid)", int(gateway.get("analytics_events_received_total", 0))),
        ("  rejected (invalid → DLQ)", int(gateway.get("analytics_events_rejected_total", 0))),
        ("  dropped by the gateway", int(gateway.get("analytics_drop_total", 0))),
        ("acked to the SDKs as stored", result.total("events_acked")),
        ("stored in Postgres", outcome.stored),
        (
            "  duplicates suppressed (resends)",
            int(aggregated.get("analytics_events_deduplicated_total", 0)),
        ),
        ("envelopes resent after reconnects", result.total("envelopes_resent")),
    ]
    for label, value in rows:
        w(f"  {label:<44}{n(value)}\n")
    w("\nsample rates per category (stored events carry the rate they were kept at)\n")
    w(f"  {'category':<14}{'stored':>10}{'mean rate':>11}{'estimated':>12}\n")
    for r in rates:
        w(
            f"  {r['category']:<14}{r['stored']:>10,}{r['mean_rate']:>11.2f}"
            f"{round(r['estimated']):>12,}\n"
        )
    w("\nwhere players connect from (region: their token; country: GeoIP of their address)\n")
    w(f"  {'region':<14}{'country':<9}{'subdivision':<13}{'players':>9}{'events':>10}\n")
    for r in origins:
        w(
            f"  {r['region']:<14}{r['country']:<9}{r['geo_region']:<13}"
            f"{r['players']:>9,}{r['events']:>10,}\n"
        )
    for metric in _DEMO_METRICS:
        w("\n" + await asyncio.to_thread(_metric_table, stack.postgres.dsn, metric))
    index = await asyncio.to_thread(_write_report, stack)
    w(f"\nreport page: {index}\n")
    w("\nwarm store\n")
    for day in exported:
        w(f"  {day.path}  {day.rows:,} rows, {day.bytes / 1024:,.0f} KiB (zstd Parquet)\n")
    verdict = "matches" if outcome.warm_rows == outcome.stored else "DIFFERS from"
    w(f"  DuckDB reads back {outcome.warm_rows:,} rows ({verdict} Postgres)\n")
    w(
        "\nreconciliation: every acked event stored exactly once — "
        f"{'yes' if outcome.ok else 'NO'} "
        f"(missing {outcome.missing}, doubled {outcome.doubled})\n"
    )
    w(
        f"query it: gameplay-analytics query --root {stack.warehouse_root} "
        '"SELECT category, count(*) FROM analytics_events GROUP BY 1"\n'
        f"slice it: gameplay-analytics insights funnel --store warm --root "
        f"{stack.warehouse_root} --by region,playstyle\n"
    )
    return outcome


_DEMO_METRICS = ("funnel", "retention", "combat", "xp")
# Players are counted by pseudonym (one per salt month: the demo runs within one).
_ORIGINS_SQL = """
SELECT COALESCE(NULLIF(region, ''), '-') AS region, COALESCE(NULLIF(country, ''), '-') AS country,
       COALESCE(NULLIF(geo_region, ''), '-') AS geo_region,
       count(DISTINCT analytics_player_id) AS players, count(*) AS events
FROM analytics_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


def _metric_table(dsn: str, metric: str) -> str:
    """One metric of the insights core on the hot store, as the CLI's table."""
    store = stores.HotStore(dsn)
    try:
        result = core.compute(metric, store, core.Params(store=store.name, by=("class",)))
    except stores.InsightsError as err:
        return f"{metric}: {err}\n"
    return render.render_result(result, "table")


def _write_report(stack: LocalStack) -> str:
    """The sprint-review page of the demo's hot store, next to its data."""
    store = stores.HotStore(stack.postgres.dsn)
    try:
        params = core.Params(store=store.name, by=("playstyle",))
        return str(report.write_report(store, params, stack.warehouse_root.parent / "report"))
    except (stores.InsightsError, OSError) as err:
        return f"not written ({err})"
    finally:
        store.close()


async def _export(stack: LocalStack, days: list[dt.date]) -> list[ExportedDay]:
    """Export the demo's days now: in production a day is exported once it has closed."""
    pool = await asyncpg.create_pool(stack.postgres.dsn, min_size=1, max_size=2)
    try:
        store = WarmStore(str(stack.warehouse_root))
        exported = []
        for day in days:
            done = await store.export_day(pool, day)
            if done is not None:
                exported.append(done)
            await warm_sessions.export_sessions_day(pool, store, day)  # gameplay_sessions/
        return exported
    finally:
        await pool.close()


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(message: str) -> None:
        out.write(f"• {message}\n")
        out.flush()

    return say


def _progress(out: TextIO, profile: LoadProfile) -> Callable[[LoadResult], None]:
    tty = out.isatty()
    last = [0.0]

    def show(result: LoadResult) -> None:
        now = time.time()
        if not tty and now - last[0] < 10:
            return
        last[0] = now
        elapsed = now - result.started
        done = min(1.0, elapsed / (profile.seconds + profile.ramp_s))
        bar = "█" * int(done * 30) + "░" * (30 - int(done * 30))
        line = (
            f"  {bar} {elapsed:4.0f} s  tracked {result.total('tracked'):>9,}  "
            f"acked {result.total('events_acked'):>9,}  "
            f"resent {result.total('envelopes_resent'):>4,}"
        )
        out.write(("\r" + line) if tty else (line + "\n"))
        out.flush()

    return show


def _end_progress(out: TextIO) -> None:
    if out.isatty():
        out.write("\n")


def main(*, data_dir: Path | None, players: int, seconds: float, jwt_secret: str) -> int:
    outcome = asyncio.run(
        run_demo(
            data_dir=data_dir,
            players=players,
            seconds=seconds,
            jwt_secret=jwt_secret,
            out=sys.stdout,
        )
    )
    return 0 if outcome.ok else 1
