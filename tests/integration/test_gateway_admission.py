"""Admission by queueing delay with a real gateway: a store that stopped answering makes a
standing queue behind the write in flight; new envelopes are refused at once with
`backpressure` (and the retry hint) although the queue has room, and are taken again once the
store catches up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from gameplay_analytics.local.services import NatsServer
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.gateway import admission
from tests.integration.test_gateway_e2e import running_gateway
from tests.integration.test_gateway_refusals import envelope, hello
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_a_standing_queue_is_refused_by_delay_then_taken_again(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")  # its own: it is stopped (SIGSTOP) for a while
    server.start()
    try:
        await jetstream.provision(jetstream.NatsSettings(nats_url=server.url))
        async with (
            running_gateway(
                server.url,
                queue_delay_target_s=0.2,
                publish_timeout_s=20.0,
                retry_after_ms=300,
                group_max_writes=1,
            ) as gw,
            connect(gw.url) as ws,
        ):
            assert (await hello(ws))["type"] == "welcome"
            pid = server.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)  # JetStream stops acknowledging; the link stays up
            try:
                await ws.send(envelope(1, 1, 3))  # taken and written: the queue was empty
                await eventually(lambda: gw.worker.writes_in_flight == 1, timeout_s=10)
                await ws.send(envelope(2, 4, 3))  # taken; waits for the one write in flight
                await asyncio.sleep(0.5)  # ... well over the target now
                assert gw.worker.depth == 6 < gw.worker.capacity
                await ws.send(envelope(3, 7, 3))
                refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
            finally:
                os.kill(pid, signal.SIGCONT)
            assert refused == {
                "type": "error", "code": "backpressure", "detail": admission.DELAY, "id": 3,
                "retry_after_ms": 300,
            }  # fmt: skip
            for ident in (1, 2):
                assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {
                    "type": "ack", "id": ident, "accepted": 3,
                }  # fmt: skip
            await ws.send(envelope(3, 7, 3))  # the resend, after the store caught up
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {
                "type": "ack", "id": 3, "accepted": 3,
            }  # fmt: skip
    finally:
        server.stop()
