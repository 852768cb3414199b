"""The load harness against the real local stack: a small run with disconnects and back-to-back
sessions reconciles exactly, and the reconciliation really catches a lost or doubled event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.loadgen import LoadProfile, Target, run_load_test
from gameplay_analytics.loadgen import store as load_store
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.stack import LocalStack, StackConfig
from gameplay_analytics.runtime import privacy_scan

pytestmark = pytest.mark.integration

SECRET = "load-test-secret-at-least-32-bytes-long"
PROFILE = LoadProfile(
    players=30, seconds=8.0, ramp_s=1.0, session_s=4.0, disconnect_share=0.3, seed=11
)


async def test_small_load_run_reconciles_exactly_and_reports(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(data_dir=tmp_path / "stack", jwt_secret=SECRET))
    await asyncio.to_thread(stack.start)
    try:
        assert stack.gateway is not None
        target = Target(
            stack.ws_url,
            SECRET,
            stack.postgres.dsn,
            stack.gateway.metrics_url,
            tuple(a.metrics_url for a in stack.aggregators),
            stack.nats_url_as(natsauth.ADMIN),
        )
        plot = tmp_path / "load.png"
        report = await run_load_test(
            target, PROFILE, state_dir=tmp_path / "players", plot_path=plot, drain_timeout_s=30
        )
        rec = report.reconciliation
        assert rec is not None
        assert rec.ok, rec
        assert rec.expected == report.result.total("events_acked") > 1_000
        assert rec.stored >= rec.expected  # and every acked one exactly once (rec.ok)
        # The profile really exercised reconnects and several sessions per player.
        assert sum(r.connections - r.sessions for r in report.result.records) >= 3
        assert all(r.sessions == 2 for r in report.result.records)
        # Latency covers every stored event of the run and is measured on commit time.
        assert report.latency is not None
        assert report.latency.column == "stored_at"
        assert report.latency.events == rec.stored
        assert 0 < report.latency.p50_ms <= report.latency.p95_ms <= report.latency.p99_ms
        # The split by stage, from the rows' stamps and the stream's store times.
        by_stage = {x.stage: x for x in report.stages}
        assert set(by_stage) == {"sdk", "gateway", "aggregator", "total"}
        assert by_stage["aggregator"].events == by_stage["total"].events > 0
        assert report.batch_ms() is not None
        # Received counts resends too (an envelope stored before its ack was lost comes back
        # after a reconnect); every stored event was received at least once.
        received = report.delta("received")
        assert received is not None and rec.stored <= received
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # The privacy scan after the load suite: no UUID outside the id columns, no IP, no
        # free text, no age field in Postgres, the DLQ or the stack's logs.
        ports = {stack.nats.port, stack.nats.monitor_port, stack.postgres.port, stack.ws_port}
        ports |= {p.metrics_port for p in [stack.gateway, *stack.aggregators]}
        scan = await privacy_scan.scan_all(
            dsn=stack.postgres.dsn, warehouse_root=stack.warehouse_root,
            nats_url=stack.nats_url_as(Role.PRIVACY),
            log_paths=sorted((tmp_path / "stack").rglob("*.log")),
            player_uuids=None, server_ports=ports,
        )  # fmt: skip
        print(scan.line(f"load ({PROFILE.players} players)"))
        assert scan.findings == [], "\n".join(f.redacted() for f in scan.findings[:20])
        # every part did its job under its own least-privilege NATS user: nothing was refused
        assert "Violation" not in stack.nats.log_path.read_text()

        # The checker itself: lose one acked event, double another across a day boundary.
        exact, partial = report.result.promised()
        guids = report.result.client_guids()
        conn = await asyncpg.connect(stack.postgres.dsn)
        try:
            lost, doubled = sorted(exact)[:2]
            await conn.execute(
                "DELETE FROM analytics_events WHERE client_guid = $1::uuid AND seq = $2", *lost
            )
            await conn.execute(
                "CREATE TEMP TABLE twin AS SELECT * FROM analytics_events "
                "WHERE client_guid = $1::uuid AND seq = $2",
                *doubled,
            )
            await conn.execute("UPDATE twin SET event_day = event_day + 1")
            await conn.execute("INSERT INTO analytics_events SELECT * FROM twin")
            broken = await load_store.reconcile(conn, guids, exact=exact, partial=partial)
        finally:
            await conn.close()
        assert (broken.missing, broken.doubled, broken.ok) == (1, 1, False)
    finally:
        await asyncio.to_thread(stack.stop)
