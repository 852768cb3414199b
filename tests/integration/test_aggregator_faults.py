"""Faults nobody foresaw: an unexpected error in the commit path naks the batch, is counted
and logged, and the consumer keeps running; the redelivered batch is then stored."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from nats.js import JetStreamContext

from gameplay_analytics.runtime.aggregator import Aggregator, Enricher
from gameplay_analytics.runtime.storage import hot
from tests.integration.support import (
    batch,
    count_rows,
    event,
    next_seq,
    publish,
    running,
    settings,
    wait_for,
)


async def test_unexpected_error_in_commit_naks_the_batch_and_keeps_consuming(
    nats_url: str,
    database: str,
    js: JetStreamContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start = await next_seq(js)
    agg = Aggregator(settings(nats_url, database, batch_size=4), start_sequence=start)
    real_write = hot.write_batch
    faults = 0

    async def faulty_write(*args: Any, **kwargs: Any) -> hot.WriteResult:
        nonlocal faults
        if faults < 2:  # neither transient nor poison: a bug in the write path
            faults += 1
            raise RuntimeError("injected fault")
        return await real_write(*args, **kwargs)

    monkeypatch.setattr(hot, "write_batch", faulty_write)
    players = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(10)]
    batches = [batch(p, g, [event(k) for k in range(10)], session=f"s-{p[:6]}") for p, g in players]
    caplog.set_level(logging.ERROR, logger="gameplay_analytics.runtime.aggregator")
    async with running(agg):
        await publish(js, batches)
        await wait_for(lambda: _rows_are(database, 100))
        assert faults == 2
        assert agg.metrics.errors.labels("unexpected")._value.get() == 2
        assert agg.ready()
    assert agg.stats.persisted == 100
    assert agg.stats.deduplicated == 0
    failures = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and "injected fault" in str(r.exc_info[1]) for r in failures)


async def _rows_are(dsn: str, n: int) -> bool:
    return await count_rows(dsn) == n


async def test_unexpected_error_in_preparation_naks_the_batch_too(
    nats_url: str, database: str, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = await next_seq(js)
    agg = Aggregator(settings(nats_url, database, batch_size=4), start_sequence=start)
    real_prepare = Enricher.prepare
    faults = 0

    def faulty_prepare(self: Enricher, *args: Any, **kwargs: Any) -> Any:
        nonlocal faults
        if faults < 1:
            faults += 1
            raise ValueError("injected fault")
        return real_prepare(self, *args, **kwargs)

    monkeypatch.setattr(Enricher, "prepare", faulty_prepare)
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    async with running(agg):
        await publish(js, [batch(player, guid, [event(k) for k in range(5)])])
        await wait_for(lambda: _rows_are(database, 5))
        assert agg.metrics.errors.labels("unexpected")._value.get() == 1
    assert agg.stats.persisted == 5
