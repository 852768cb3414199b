"""One owner for the stream and the bucket: processes verify them, never create or reset them,
and each pipeline's names keep its events and rules apart from another's on the same NATS."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import pytest

from gameplay_analytics.contract.natsnames import KV_BREAKER_KEY, PipelineNames
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.aggregator.app import Aggregator
from gameplay_analytics.runtime.gateway import Gateway
from tests.conftest import fresh_database
from tests.integration.support import settings as aggregator_settings
from tests.integration.test_gateway_e2e import gateway_settings

pytestmark = pytest.mark.integration


def names_settings(names: PipelineNames) -> dict[str, Any]:
    return {
        "stream": names.stream,
        "events_subject": names.events_subject,
        "dlq_subject": names.dlq_subject,
        "config_bucket": names.config_bucket,
    }


async def test_a_process_start_never_resets_the_operators_stream(
    nats_url: str, postgres_dsn: str
) -> None:
    names = PipelineNames.for_pipeline(f"ns-{uuid.uuid4().hex[:8]}", "p")
    limits = jetstream.StreamSettings(duplicate_window_s=300.0, max_age_s=3600.0)
    owner = jetstream.NatsSettings(nats_url=nats_url, **names_settings(names))
    await jetstream.provision(owner, limits=limits)

    gateway = Gateway(gateway_settings(nats_url, **names_settings(names)))
    await gateway.start()
    async with fresh_database(postgres_dsn, "owner") as dsn:
        aggregator = Aggregator(aggregator_settings(nats_url, dsn, **names_settings(names)))
        try:
            await aggregator.start()
        finally:
            await aggregator.close()
    await gateway.drain_and_stop()

    nc = await nats.connect(nats_url)
    try:
        config = (await nc.jetstream().stream_info(names.stream)).config
    finally:
        await nc.close()
    assert (config.duplicate_window, config.max_age) == (300.0, 3600.0)  # the owner's limits


async def test_without_the_stream_a_process_refuses_to_start_and_says_why(nats_url: str) -> None:
    names = PipelineNames.for_pipeline(f"ns-{uuid.uuid4().hex[:8]}", "missing")
    gateway = Gateway(gateway_settings(nats_url, **names_settings(names)))
    with pytest.raises(jetstream.MissingInfrastructure, match=f"stream {names.stream} .*operator"):
        await gateway.start()
    await gateway.drain_and_stop()

    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().stream_info(names.stream)  # and it did not create one
    finally:
        await nc.close()


async def test_the_breaker_reaches_a_running_gateway_through_its_bucket(nats_url: str) -> None:
    names = PipelineNames.for_pipeline(f"ns-{uuid.uuid4().hex[:8]}", "breaker")
    await jetstream.provision(jetstream.NatsSettings(nats_url=nats_url, **names_settings(names)))
    other = PipelineNames.for_pipeline(f"ns-{uuid.uuid4().hex[:8]}", "other")
    await jetstream.provision(jetstream.NatsSettings(nats_url=nats_url, **names_settings(other)))
    gateway = Gateway(gateway_settings(nats_url, **names_settings(names)))
    bystander = Gateway(gateway_settings(nats_url, **names_settings(other)))
    await gateway.start()
    await bystander.start()
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().key_value(names.config_bucket)
        await kv.put(KV_BREAKER_KEY, json.dumps({"threshold": 0.6, "holdSeconds": 3}).encode())
        for _ in range(100):
            if gateway.live.breaker is not None:
                break
            await asyncio.sleep(0.05)
        assert gateway.live.breaker is not None
        assert (gateway.live.breaker.threshold, gateway.live.breaker.hold_s) == (0.6, 3.0)
        assert bystander.live.breaker is None  # another pipeline's bucket: untouched
    finally:
        await nc.close()
        await gateway.drain_and_stop()
        await bystander.drain_and_stop()
