"""The object store is optional and never crash-loops the aggregator: an unreachable S3
endpoint makes it not ready with the reason on /readyz, a reachable one (moto) ready."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.js import JetStreamContext

from gameplay_analytics.local.services import free_port
from gameplay_analytics.runtime.aggregator.app import Aggregator
from tests.conftest import fresh_database
from tests.integration.support import next_seq
from tests.integration.support import settings as aggregator_settings

pytestmark = pytest.mark.integration


async def readyz(port: int) -> tuple[int, str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = (await asyncio.wait_for(reader.read(), 5)).decode()
    writer.close()
    status = int(reply.split(" ", 2)[1])
    return status, reply.split("\r\n\r\n", 1)[1]


@contextlib.asynccontextmanager
async def started(
    nats_url: str, postgres_dsn: str, js: JetStreamContext, **extra: object
) -> AsyncIterator[Aggregator]:
    async with fresh_database(postgres_dsn, "warm") as dsn:
        # From the stream's end: a new durable consumer would otherwise store every event
        # the session's earlier tests published, and the probe waits behind that backlog.
        aggregator = Aggregator(
            aggregator_settings(nats_url, dsn, **extra), start_sequence=await next_seq(js)
        )
        try:
            await asyncio.wait_for(aggregator.start(), 60)  # no blocking call at start
            yield aggregator
        finally:
            await aggregator.close()


async def until_ready_state(
    port: int, *, status: int, containing: str = "", within_s: float = 60.0
) -> str:
    # Other reasons may come and go first (the consumer binding, a busy machine): wait for the
    # state asked for, with the reason asked for; by the clock, so a slow /readyz cannot
    # stretch the wait to pytest's timeout (it did once: 300 s, idle in select).
    loop = asyncio.get_running_loop()
    deadline, answers = loop.time() + within_s, 0
    got, body = 0, ""
    while loop.time() < deadline:
        got, body = await readyz(port)
        answers += 1
        if got == status and containing in body:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"/readyz never answered {status} with {containing!r} in {within_s:g}s "
        f"({answers} answers; the last: {got} {body!r})"
    )


async def test_unreachable_s3_is_not_ready_with_a_reason_not_a_crash(
    nats_url: str, postgres_dsn: str, aws_env: None, js: JetStreamContext
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with started(
        nats_url, postgres_dsn, js, warehouse_root="s3://warehouse/analytics", s3_endpoint=dead
    ) as aggregator:
        assert aggregator.probe_port is not None
        reason = "warm store s3://warehouse/analytics"
        body = await until_ready_state(aggregator.probe_port, status=503, containing=reason)
        assert reason in body


async def test_reachable_s3_and_a_local_volume_are_ready(
    nats_url: str,
    postgres_dsn: str,
    s3_endpoint: str,
    aws_env: None,
    tmp_path: object,
    js: JetStreamContext,
) -> None:
    bucket = f"wh-{uuid.uuid4().hex[:8]}"  # created by the store itself (allow_bucket_creation)
    async with started(
        nats_url, postgres_dsn, js, warehouse_root=f"s3://{bucket}/x", s3_endpoint=s3_endpoint
    ) as aggregator:
        assert aggregator.probe_port is not None
        await until_ready_state(aggregator.probe_port, status=200)
    async with started(nats_url, postgres_dsn, js, warehouse_root=f"{tmp_path}/wh") as aggregator:
        assert aggregator.probe_port is not None
        await until_ready_state(aggregator.probe_port, status=200)
