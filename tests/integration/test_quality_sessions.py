"""The nightly session check against a real run: counts agree, then session events are lost
on purpose and the check says ALERT, exits 1 and exports the variance over 3 %.

A nats-server of its own: the sessions ledger counts every gateway of the NATS it is on, and
the session-wide server carries other tests' gateways.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gameplay_analytics import cli
from gameplay_analytics.local.services import NatsServer
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.sdk import WebSocketConnector
from tests.integration.support import running, settings, wait_for
from tests.integration.test_gateway_e2e import new_client, play, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[str]:
    server = NatsServer(tmp_path / "nats", sync_always=False)
    await asyncio.to_thread(server.start)
    try:
        await jetstream.provision(jetstream.NatsSettings(nats_url=server.url))  # as `up` does
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


async def test_lost_session_events_raise_the_alert_condition(
    own_nats: str, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agg = Aggregator(settings(own_nats, database))
    async with running_gateway(own_nats) as gateway, running(agg):
        clients = [new_client(gateway) for _ in range(4)]
        clients.append(new_client(gateway, consent={"analytics": False}))  # stores nothing
        connectors = [WebSocketConnector(c, gateway.url) for c in clients]
        for connector in connectors:
            connector.start()
        for client in clients:
            play(client, 3)
        await asyncio.wait_for(asyncio.gather(*(c.welcomed.wait() for c in connectors)), 10)
        assert all(await asyncio.gather(*(c.stop(flush_timeout_s=10) for c in connectors)))
        await wait_for(lambda: _sessions_are(database, 4))
    day = dt.datetime.now(dt.UTC).date().isoformat()
    metrics_file = tmp_path / "quality.prom"
    argv = ["quality", "sessions", "--day", day, "--nats-url", own_nats, "--dsn", database,
            "--metrics-file", str(metrics_file)]  # fmt: skip

    assert await asyncio.to_thread(cli.main, argv) == 0
    agreed = capsys.readouterr().out
    assert "variance" in agreed and "0.00%" in agreed and "verdict" in agreed
    assert _gauges(metrics_file) == {
        "analytics_quality_session_variance_ratio": 0.0,
        'analytics_quality_sessions{source="gateway"}': 4.0,
        'analytics_quality_sessions{source="stored"}': 4.0,
        'analytics_quality_sessions{source="opted_out"}': 1.0,
    }

    # One session's lifecycle events are lost between the gateway and storage.
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "DELETE FROM analytics_sessions WHERE session_id = "
            "(SELECT session_id FROM analytics_sessions LIMIT 1)"
        )
    finally:
        await conn.close()
    assert await asyncio.to_thread(cli.main, argv) == 1
    disagreed = capsys.readouterr().out
    assert "25.00%" in disagreed and "ALERT" in disagreed
    assert _gauges(metrics_file)["analytics_quality_session_variance_ratio"] == 0.25


async def _sessions_are(dsn: str, n: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM analytics_sessions")) == n
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


def _gauges(path: Path) -> dict[str, float]:
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("analytics_quality_") and "timestamp" not in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found
