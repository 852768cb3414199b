"""A seq the JSON Schema allows but Postgres cannot store, sent by one client among many.

Its own gateway, aggregator and database: the aggregator this test may kill must not be the
hostile suite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import nats
import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.runtime.gateway import Gateway
from tests.conftest import admin_url
from tests.fuzz.test_hostile_clients import _stored, boss, envelope, hello, hostile_db
from tests.integration.support import next_seq, settings
from tests.integration.test_gateway_e2e import gateway_settings

__all__ = ["hostile_db"]

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]


async def test_out_of_range_seq_neither_kills_the_aggregator_nor_loses_neighbours(
    nats_server: Any, hostile_db: str
) -> None:
    nc = await nats.connect(admin_url(str(nats_server.url)))
    await jetstream.ensure_stream(nc.jetstream(), jetstream.StreamSettings.model_validate({}))
    start = await next_seq(nc.jetstream())
    await nc.close()
    gateway = Gateway(gateway_settings(admin_url(str(nats_server.url))))
    await gateway.start()
    aggregator = Aggregator(
        settings(admin_url(str(nats_server.url)), hostile_db), start_sequence=start
    )
    await aggregator.start()
    consuming = asyncio.create_task(aggregator.run())
    try:
        guid = str(uuid.uuid4())
        async with connect(gateway.url) as ws:
            assert (await hello(ws, guid=guid))["type"] == "welcome"
            await ws.send(envelope(1, [boss(1), boss(2), boss(2**63 + 1)]))
            ack = json.loads(await ws.recv())
        await asyncio.sleep(3)
        assert not consuming.done(), f"aggregator died: {consuming.exception()!r} (ack {ack})"

        class _S:
            dsn = hostile_db

        assert sorted(await _stored(_S, guid, expect=2, within=5))[:2] == [1, 2]  # type: ignore[arg-type]
    finally:
        aggregator.request_stop()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(consuming, 10)
        await aggregator.close()
        await gateway.drain_and_stop()
