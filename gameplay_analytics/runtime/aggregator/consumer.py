"""The aggregator's side of JetStream: the durable pull consumer, its fetches and its lag.

Replicas share one durable consumer (CONSUMER_NAME), so JetStream hands each message to one
of them; a message not acked within ACK_WAIT_S goes to whichever replica fetches next.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from typing import Any

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gameplay_analytics.runtime.aggregator import retry
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings

__all__ = ["Consumer", "ConsumerLag"]

log = logging.getLogger(__name__)

_MAX_ACK_PENDING = 50_000


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerLag:
    """How far behind the durable consumer is: messages not yet acked (delivered or not),
    and the age of the oldest of them, 0 when there is none."""

    pending: int
    seconds: float

    @classmethod
    def of(
        cls, undelivered: int, unacked: int, oldest: dt.datetime | None, *, now: dt.datetime
    ) -> ConsumerLag:
        pending = undelivered + unacked
        if not pending or oldest is None:
            return cls(pending, 0.0)
        return cls(pending, max(0.0, (now - oldest).total_seconds()))


class Consumer:
    """Fetches batches for one replica; `bind()` first.

    `start_sequence` makes a *new* durable consumer begin at that stream sequence instead of
    the stream's start (an existing consumer keeps its position).
    """

    def __init__(
        self,
        js: JetStreamContext,
        settings: AggregatorSettings,
        metrics: AggregatorMetrics,
        *,
        stopping: asyncio.Event,
        start_sequence: int | None = None,
    ) -> None:
        self._js = js
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping
        self._start_sequence = start_sequence
        self._sub: JetStreamContext.PullSubscription | None = None

    async def bind(self) -> None:
        """Create the durable consumer if it is missing and subscribe to it."""
        self._sub = await self._js.pull_subscribe(
            self._settings.events_subject,
            durable=self._settings.consumer_name,
            stream=self._settings.stream,
            config=self._config(),
        )

    async def fetch(self, batch: int | None = None) -> list[Msg]:
        """Up to `batch` (default BATCH_SIZE) messages, returned as soon as some are there:
        JetStream answers a pull with what it holds then, or with the first that arrives
        within FETCH_TIMEOUT_S (nats-server ≥ 2.11 with nats.py's no-wait-plus-expires
        request), so the timeout bounds an idle wait, never a busy one. [] if none came, or if
        stop was requested while NATS was failing (each failure counted, retried with backoff).
        """
        sub = self._subscription()
        size = batch or self._settings.batch_size

        async def once() -> list[Msg]:
            try:
                return list(await sub.fetch(size, timeout=self._settings.fetch_timeout_s))
            except TimeoutError:  # nothing came (nats.py raises its own or asyncio's): no fault
                return []

        async def failed(err: BaseException, delay: float) -> None:
            self._metrics.errors.labels(retry.error_kind(err)).inc()
            log.warning("fetch failed (%s: %s); retrying in %.2fs", type(err).__name__, err, delay)

        try:
            return await retry.retrying(
                once, backoff=self._settings.backoff(), on_failure=failed, interrupt=self._stopping
            )
        except retry.GaveUp:
            return []

    async def read_lag(self) -> ConsumerLag:
        """Read and export how far behind the consumer is: one consumer-info request and,
        when something is pending, one message-get for the oldest unacked message's stream
        timestamp (every message above the ack floor on our subject is unacked: were the
        first acked, the floor would have moved past it)."""
        info = await self._subscription().consumer_info()
        undelivered, unacked = info.num_pending or 0, info.num_ack_pending or 0
        stored_at: dt.datetime | None = None
        if undelivered + unacked:
            floor = info.ack_floor.stream_seq if info.ack_floor else None
            with contextlib.suppress(nats.js.errors.NotFoundError):  # gone (limits): unknown
                oldest = await self._js.get_msg(
                    self._settings.stream,
                    seq=(floor or 0) + 1,
                    subject=self._settings.events_subject,
                    next=True,
                )
                stored_at = oldest.time
        lag = ConsumerLag.of(undelivered, unacked, stored_at, now=dt.datetime.now(dt.UTC))
        m = self._metrics
        m.lag.set(undelivered)
        m.ack_pending.set(unacked)
        m.pending_messages.set(lag.pending)
        m.lag_seconds.set(lag.seconds)
        return lag

    def _subscription(self) -> JetStreamContext.PullSubscription:
        assert self._sub is not None, "bind() first"
        return self._sub

    def _config(self) -> ConsumerConfig:
        config: dict[str, Any] = {
            "ack_policy": AckPolicy.EXPLICIT,
            "ack_wait": self._settings.ack_wait_s,
            "max_ack_pending": _MAX_ACK_PENDING,
            "filter_subject": self._settings.events_subject,
        }
        if self._start_sequence is not None:
            config["deliver_policy"] = DeliverPolicy.BY_START_SEQUENCE
            config["opt_start_seq"] = self._start_sequence
        return ConsumerConfig(**config)
