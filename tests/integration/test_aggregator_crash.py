"""Crash safety: a crash between commit and ack, kill -9 mid-stream, Postgres going away."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gameplay_analytics.contract.messages import EVENTS_SUBJECT, STREAM
from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.runtime.storage import hot
from tests.integration.support import (
    aggregating,
    batch,
    count_rows,
    event,
    next_seq,
    publish,
    running,
    settings,
    wait_for,
)


def _stream(n_batches: int, per_batch: int) -> list[Any]:
    players = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(10)]
    return [
        batch(p, g, [event(i * per_batch + k) for k in range(per_batch)], session=f"s-{p[:6]}")
        for i in range(n_batches // len(players))
        for p, g in players
    ]


async def test_crash_between_commit_and_ack_loses_and_doubles_nothing(
    nats_url: str, database: str, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = await next_seq(js)
    conf = settings(nats_url, database, batch_size=5, ack_wait_s=1.0)
    real_write = hot.write_batch
    crashed = asyncio.Event()

    async def commit_then_crash(*args: Any, **kwargs: Any) -> hot.WriteResult:
        await real_write(*args, **kwargs)  # committed...
        crashed.set()
        raise asyncio.CancelledError  # ...and the process dies before the ack

    monkeypatch.setattr(hot, "write_batch", commit_then_crash)
    first = Aggregator(conf, start_sequence=start)
    await first.start()
    batches = _stream(40, 10)
    await publish(js, batches)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(crashed.wait(), 10)
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.close()
    stored_before = await count_rows(database)
    assert 0 < stored_before < 400

    monkeypatch.setattr(hot, "write_batch", real_write)
    second = Aggregator(conf)  # same durable consumer: the unacked batch is redelivered
    async with running(second):
        await wait_for(lambda: _rows_are(database, 400))
        # The batch that committed but was never acked comes back after ack_wait: dedup.
        await wait_for(lambda: _deduplicated(second, stored_before), within=10)
    assert await count_rows(database) == 400
    assert second.stats.persisted == 400 - stored_before


async def test_kill_9_mid_stream_then_restart(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    start = await next_seq(js)
    conf = settings(nats_url, database, batch_size=4, ack_wait_s=1.0)
    await js.add_consumer(STREAM, ConsumerConfig(
        durable_name=conf.consumer_name, ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
        filter_subject=EVENTS_SUBJECT, max_ack_pending=50_000,
    ))  # fmt: skip
    env = {**os.environ, **{
        f"GAMEPLAY_ANALYTICS_{k.upper()}": str(v)
        for k, v in conf.model_dump(exclude_none=True).items()
    }}  # fmt: skip
    argv = [sys.executable, "-m", "gameplay_analytics.cli", "aggregator"]
    batches = _stream(200, 25)
    await publish(js, batches)
    proc = subprocess.Popen(  # noqa: ASYNC220 - children to SIGKILL, on purpose
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_for(lambda: _rows_at_least(database, 500), within=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored = await count_rows(database)
        assert stored < 5000, "the kill came too late to test anything"
        restarted = subprocess.Popen(  # noqa: ASYNC220
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await wait_for(lambda: _rows_are(database, 5000), within=40)
            await asyncio.sleep(1.5)  # past ack_wait: any redelivery would have landed
            assert await count_rows(database) == 5000
            restarted.send_signal(signal.SIGTERM)  # graceful: exits 0 after the batch
            assert restarted.wait(20) == 0
        finally:
            restarted.kill()
    finally:
        proc.kill()


async def test_postgres_outage_is_retried_until_everything_is_stored(
    nats_url: str, database: str, js: JetStreamContext, postgres_server: Any
) -> None:
    batches = _stream(60, 10)
    async with aggregating(nats_url, database, js, batch_size=10) as agg:
        await publish(js, batches[:20])
        await wait_for(lambda: _rows_are(database, 200))
        postgres_server.stop(signal.SIGINT)  # fast shutdown: connections are cut
        try:
            await publish(js, batches[20:])
            await asyncio.sleep(2.0)
            errors = agg.metrics.errors.labels("postgres_unavailable")._value.get()
            assert errors > 0
            assert not agg.ready()
        finally:
            postgres_server.start()
        await wait_for(lambda: _rows_are(database, 600), within=30)
        assert agg.ready()
    assert agg.stats.persisted == 600


async def _rows_are(dsn: str, n: int) -> bool:
    return await count_rows(dsn) == n


async def _rows_at_least(dsn: str, n: int) -> bool:
    return await count_rows(dsn) >= n


async def _deduplicated(agg: Aggregator, n: int) -> bool:
    return agg.stats.deduplicated >= n
