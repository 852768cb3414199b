"""IngestWorker: the bounded queue between the sockets and JetStream, and its publisher.

Publishes are pipelined (nats-py's `publish_async`, thousands in flight, acks settled by
callbacks), never awaited one by one. An envelope's future resolves only once JetStream has
acknowledged every message of it; past `publish_timeout_s` it fails, so no client waits forever
on a server that went away, and the client's resend carries the same `Nats-Msg-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from gameplay_analytics.runtime.gateway import metrics

__all__ = ["Backpressure", "IngestWorker", "Outbound", "PublishFailed"]

log = logging.getLogger(__name__)

_SWEEP_S = 0.1
_MSG_ID = "Nats-Msg-Id"


class Backpressure(Exception):
    """The envelope was not queued: the queue is full, NATS is away, or the gateway drains."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PublishFailed(Exception):
    """JetStream did not acknowledge the envelope in time (or refused it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outbound:
    """One JetStream message: subject, payload and its `Nats-Msg-Id`."""

    subject: str
    payload: bytes
    msg_id: str


@dataclasses.dataclass(eq=False, slots=True)
class _Job:
    messages: list[Outbound]
    events: int
    future: asyncio.Future[None]
    enqueued: float
    deadline: float
    remaining: int
    acks: list[asyncio.Future[Any]] = dataclasses.field(default_factory=list)


class IngestWorker:
    """Accepts envelopes while there is room and NATS is connected; publishes them in order.

    `depth` counts the events of every envelope not yet acknowledged by JetStream, queued or
    in flight, since both hold memory and both are what `queue_capacity` bounds.
    """

    def __init__(self, *, capacity: int, publish_timeout_s: float) -> None:
        self.capacity = capacity
        self._timeout = publish_timeout_s
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._pending: set[_Job] = set()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.depth = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def attach(self, nc: Client, js: JetStreamContext) -> None:
        self._nc, self._js = nc, js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def fill(self) -> float:
        return self.depth / self.capacity

    def refusal(self, events: int = 1) -> str | None:
        """Why `events` more could not be queued now, or None. Cheap: sessions ask it before
        validating a frame, so that an overloaded gateway spends no work on what it refuses."""
        if self.draining:
            return "gateway is shutting down"
        if not self.connected:
            return "event store unavailable"
        if self.depth and self.depth + events > self.capacity:
            return "ingest queue full"
        return None

    def submit(self, messages: list[Outbound], *, events: int) -> asyncio.Future[None]:
        """Queue one envelope's messages; the future resolves when all are stored.

        Raises Backpressure, without queuing anything, when the envelope does not fit or the
        gateway cannot publish now. An envelope larger than the whole queue is still accepted
        into an empty queue, or it could never be stored.
        """
        refusal = self.refusal(events)
        if refusal is not None:
            raise Backpressure(refusal)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        job = _Job(
            messages=messages,
            events=events,
            future=loop.create_future(),
            enqueued=now,
            deadline=now + self._timeout,
            remaining=len(messages),
        )
        self.depth += events
        self._pending.add(job)
        self._idle.clear()
        self._queue.put_nowait(job)
        return job.future

    async def run(self) -> None:
        """Publish queued envelopes until cancelled; a sweeper fails the ones past deadline."""
        sweeper = asyncio.create_task(self._sweep(), name="ingest-sweeper")
        try:
            while True:
                job = await self._queue.get()
                if job.future.done():
                    continue
                await self._publish(job)
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def drain(self, timeout_s: float) -> int:
        """Stop accepting, wait for pending envelopes to be stored; fail the rest. Returns how
        many envelopes were failed."""
        self.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        leftover = list(self._pending)
        for job in leftover:
            self._finish(job, PublishFailed("gateway shut down before the store acknowledged"))
        return len(leftover)

    # -- private ---------------------------------------------------------------------------

    async def _publish(self, job: _Job) -> None:
        js = self._js
        assert js is not None, "attach() before run()"
        for message in job.messages:
            stall = job.deadline - time.monotonic()
            try:
                if stall <= 0:
                    raise PublishFailed("no JetStream capacity before the deadline")
                ack = await js.publish_async(
                    message.subject,
                    message.payload,
                    wait_stall=stall,
                    headers={_MSG_ID: message.msg_id},
                )
            except Exception as err:
                log.warning("publish failed: %s", type(err).__name__)
                self._finish(job, PublishFailed(type(err).__name__))
                return
            if job.future.done():  # timed out meanwhile: let this ack go
                ack.cancel()
                return
            job.acks.append(ack)
            ack.add_done_callback(functools.partial(self._on_ack, job))

    def _on_ack(self, job: _Job, ack: asyncio.Future[Any]) -> None:
        if job.future.done():
            return
        if ack.cancelled():
            self._finish(job, PublishFailed("cancelled"))
            return
        err = ack.exception()
        if err is not None:
            self._finish(job, PublishFailed(type(err).__name__))
            return
        job.remaining -= 1
        if job.remaining == 0:
            metrics.PUBLISH_LATENCY.observe(time.monotonic() - job.enqueued)
            self._finish(job, None)

    def _finish(self, job: _Job, error: Exception | None) -> None:
        if job not in self._pending:
            return
        self._pending.discard(job)
        self.depth -= job.events
        if not self._pending:
            self._idle.set()
        for ack in job.acks:
            if not ack.done():
                ack.cancel()  # releases nats-py's in-flight slot
        if job.future.done():
            return
        if error is None:
            job.future.set_result(None)
        else:
            job.future.set_exception(error)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = time.monotonic()
            expired = [job for job in self._pending if job.deadline <= now]
            for job in expired:
                self._finish(job, PublishFailed("no JetStream acknowledgement in time"))
