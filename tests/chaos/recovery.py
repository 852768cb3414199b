"""How long the pipeline takes to recover from a JetStream fault, read from the outside.

Two figures per fault, both measured from the instant of the fault:

- `first_ack`: the first envelope a gateway got acknowledged by JetStream after it (the
  gateway's `analytics_publish_latency_seconds_count` grows); with the stream leader gone this
  is the new leader's election plus the clients' resend; with quorum gone, nothing until it
  is back.
- `caught_up`: the aggregators have stored and acked every event message the stream held
  when publishing resumed (the durable consumer's ack floor reaches the events subject's last
  sequence read at `first_ack`), so the backlog of the outage is behind them.

Probes poll every `_POLL_S`, so the figures are upper bounds to within about that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats.errors
from nats.js.errors import NotFoundError

from gameplay_analytics.contract.messages import STREAM
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.demo import metric_totals
from gameplay_analytics.local.stack import LocalStack
from tests.chaos.support import connect

__all__ = ["Recovery", "stream_peers"]

_POLL_S = 0.1
_EVENTS = "analytics.events"
_CONSUMER = "aggregator"
_ACKED = "analytics_publish_latency_seconds_count"
_PROBE_ERRORS = (OSError, TimeoutError, nats.errors.Error)


async def stream_peers(nats_url: str, timeout_s: float = 30.0) -> tuple[str, list[str]]:
    """(leader, followers) of the stream by server name, once it has a leader (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(*_PROBE_ERRORS):
            nc = await connect(nats_url)
            try:
                info = await nc.jetstream(timeout=1).stream_info(STREAM)
            finally:
                await nc.close()
            cluster = info.cluster
            if cluster is not None and cluster.leader:
                return cluster.leader, [p.name for p in cluster.replicas or []]
        assert time.monotonic() < deadline, "the stream has no leader"
        await asyncio.sleep(_POLL_S)


class Recovery:
    """Times the recovery from one fault; `mark()` right after injecting it."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.gateway is not None
        self._metrics_url = stack.gateway.metrics_url
        self._nats_url = stack.nats_url_as(natsauth.ADMIN)
        self._at = 0.0
        self._acked = 0.0

    async def mark(self) -> None:
        self._at = time.monotonic()
        self._acked = await self._acked_now()

    async def first_ack(self, timeout_s: float) -> float | None:
        """Seconds from the mark to the first JetStream ack a gateway received; None if none
        came within `timeout_s`."""
        while time.monotonic() - self._at < timeout_s:
            if await self._acked_now() > self._acked:
                return time.monotonic() - self._at
            await asyncio.sleep(_POLL_S)
        return None

    async def caught_up(self, timeout_s: float) -> float | None:
        """Seconds from the mark until the consumer has acked everything up to the events
        subject's last sequence as read now; None if not within `timeout_s` of the mark."""
        target: int | None = None
        while time.monotonic() - self._at < timeout_s:
            with contextlib.suppress(*_PROBE_ERRORS):
                nc = await connect(self._nats_url)
                try:
                    js = nc.jetstream(timeout=1)
                    if target is None:
                        with contextlib.suppress(NotFoundError):
                            target = (await js.get_last_msg(STREAM, _EVENTS)).seq or 0
                    info = await js.consumer_info(STREAM, _CONSUMER, timeout=1)
                finally:
                    await nc.close()
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                if target is not None and (floor or 0) >= target:
                    return time.monotonic() - self._at
            await asyncio.sleep(_POLL_S)
        return None

    async def _acked_now(self) -> float:
        totals = await asyncio.to_thread(metric_totals, self._metrics_url)
        return totals.get(_ACKED, 0.0)
