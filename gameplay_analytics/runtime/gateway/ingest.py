"""IngestWorker: the bounded queue between the sockets and JetStream, and its publisher.

Group commit: the publisher takes every envelope queued within `group_window_s`, or while
`group_max_writes` earlier writes await their acknowledgement, and writes their event batches
(up to `group_max_bytes`) as ONE JetStream message
(`contract.messages.encode_bundle`), so that with `sync_interval: always` one fsync stores the
envelopes of many sessions. DLQ entries stay one message each. Writes are pipelined (nats-py's
`publish_async`, acks settled by callbacks), never awaited one by one. An envelope's future
resolves only once JetStream has acknowledged every write it is part of; past
`publish_timeout_s` it fails, so no client waits forever on a server that went away, and the
client resends the envelope.

Admission (`admission.refusal`) bounds the queue by room (`capacity` events) and by delay: no
envelope is taken while every write slot is in flight and the oldest envelope still waiting
for its JetStream write (queued, not yet handed to the connection) has waited over
`target_delay_s`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from gameplay_analytics.contract import messages
from gameplay_analytics.runtime.gateway import admission, metrics

__all__ = ["Backpressure", "IngestWorker", "Outbound", "PublishFailed", "Write", "plan_writes"]

log = logging.getLogger(__name__)

_SWEEP_S = 0.1
_DRAIN_TAU_S = 1.0  # time constant of the drain-rate average (retry hints)
_MSG_ID = "Nats-Msg-Id"


class Backpressure(Exception):
    """The envelope was not queued: the queue is full, NATS is away, or the gateway drains."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PublishFailed(Exception):
    """JetStream did not acknowledge the envelope in time (or refused it)."""


class Outbound(msgspec.Struct, frozen=True, gc=False):
    """One message of an envelope: subject, payload and its `Nats-Msg-Id`."""

    subject: str
    payload: bytes
    msg_id: str


class _Job(msgspec.Struct, eq=False):  # identity equality and hash: jobs sit in a set
    messages: list[Outbound]
    events: int
    future: asyncio.Future[None]
    enqueued: float
    deadline: float
    remaining: int = 0
    writes: list[Write] = msgspec.field(default_factory=list)
    written: bool = False  # handed to JetStream (or settled): no longer waiting in the queue


@dataclasses.dataclass(eq=False, slots=True)
class Write:
    """One JetStream message and the envelopes (jobs) waiting for its acknowledgement."""

    subject: str
    payload: bytes
    msg_id: str
    jobs: list[Any]
    ack: asyncio.Future[Any] | None = None


def plan_writes(jobs: Sequence[Any], *, max_bytes: int) -> list[Write]:
    """The JetStream writes of some queued envelopes, in queue order. Pure.

    Event batches are bundled up to `max_bytes` of payload per write (a batch larger than that
    goes alone); any other message (DLQ entries) is a write of its own. `jobs` are anything
    with a `messages: list[Outbound]`; each write lists the jobs it carries a part of.
    """
    writes: list[Write] = []
    parts: list[bytes] = []
    ids: list[str] = []
    members: list[Any] = []
    size = 0

    def close_bundle() -> None:
        nonlocal size
        if parts:
            writes.append(
                Write(
                    messages.EVENTS_SUBJECT,
                    messages.encode_bundle(parts),
                    messages.bundle_msg_id(ids),
                    list(members),
                )
            )
        parts.clear()
        ids.clear()
        members.clear()
        size = 0

    for job in jobs:
        for message in job.messages:
            if message.subject != messages.EVENTS_SUBJECT:
                writes.append(Write(message.subject, message.payload, message.msg_id, [job]))
                continue
            if parts and size + len(message.payload) + 1 > max_bytes:
                close_bundle()
            parts.append(message.payload)
            ids.append(message.msg_id)
            size += len(message.payload) + 1
            if not members or members[-1] is not job:
                members.append(job)
    close_bundle()
    return writes


class IngestWorker:
    """Accepts envelopes while there is room and NATS is connected; publishes them in order.

    `depth` counts the events of every envelope not yet acknowledged by JetStream, queued or
    in flight, since both hold memory and both are what `queue_capacity` bounds.
    """

    def __init__(
        self,
        *,
        capacity: int,
        publish_timeout_s: float,
        group_window_s: float = 0.0,
        group_max_bytes: int = 512 * 1024,
        max_writes: int = 4,
        target_delay_s: float = 0.0,
    ) -> None:
        self.capacity = capacity
        self._target_delay = target_delay_s
        self._timeout = publish_timeout_s
        self._window = group_window_s
        self._max_bytes = group_max_bytes
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._pending: set[_Job] = set()
        self._waiting: collections.deque[_Job] = collections.deque()  # unwritten, oldest first
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.depth = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._max_writes = max_writes
        self._writes = 0  # JetStream writes not yet acknowledged
        self._write_room = asyncio.Event()
        self._write_room.set()
        self._stored = 0  # events acknowledged by JetStream, ever
        self._drain = admission.DrainRate(_DRAIN_TAU_S)  # events stored per second while busy
        self._line = admission.RetryLine()
        self._taken = self._taken_events = 0  # envelopes queued, and their events, ever

    def attach(self, nc: Client, js: JetStreamContext) -> None:
        self._nc, self._js = nc, js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def writes_in_flight(self) -> int:
        """JetStream writes sent and not yet acknowledged."""
        return self._writes

    @property
    def fill(self) -> float:
        return self.depth / self.capacity

    def head_wait(self, now: float) -> float:
        """How long the oldest envelope still waiting for its JetStream write has waited (0:
        none). Time in the queue, not the store's own latency: that is what a standing queue
        adds, and what refusing new envelopes can take away."""
        waiting = self._waiting
        while waiting and waiting[0].written:
            waiting.popleft()
        return now - waiting[0].enqueued if waiting else 0.0

    def refusal(self, events: int = 1) -> str | None:
        """Why `events` more could not be queued now, or None. Cheap: sessions ask it before
        validating a frame, so that an overloaded gateway spends no work on what it refuses."""
        state = admission.QueueState(
            depth=self.depth,
            capacity=self.capacity,
            head_wait_s=self.head_wait(time.monotonic()),  # always: it prunes the written
            store_busy=self._writes >= self._max_writes,
            draining=self.draining,
            connected=self.connected,
        )
        return admission.refusal(state, events, target_s=self._target_delay)

    def retry_after_ms(self, reason: str, ceiling_ms: int) -> int:
        """The retry hint for a refusal (`admission.retry_after_ms`), for a full or standing
        queue that drains placed in the line (`admission.RetryLine`)."""
        drain = self._drain.per_s
        hint = admission.retry_after_ms(reason, self.depth, drain, ceiling_ms=ceiling_ms)
        if reason in (admission.FULL, admission.DELAY) and drain and self._taken:
            take_s = self._taken_events / self._taken / drain  # the average envelope taken
            hint = self._line.place_ms(time.monotonic(), hint, take_s, ceiling_ms)
        return hint

    async def admit(self, wait_s: float) -> str | None:
        """Admission of one more envelope, before any of it is parsed: None when there is room
        now or within `wait_s` (FIFO among waiting sessions), else why not.

        A session waits here instead of reading its next frame, so that the frames stay in the
        sockets (TCP pushes back on the clients); but the wait adds to the latency of what is
        then taken, so it is off by default (`admission_wait_s`), and only a full queue is
        waited for, never a queue over its delay target.
        """
        refusal = self.refusal()
        if refusal != admission.FULL or wait_s <= 0:
            return refusal
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, wait_s)
        except TimeoutError:
            return self.refusal()
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        return self.refusal()

    def submit(self, messages: list[Outbound], *, events: int) -> asyncio.Future[None]:
        """Queue one envelope's messages; the future resolves when all are stored.

        Raises Backpressure, without queuing anything, when admission refuses one more event
        now: an envelope admitted while the queue was below its capacity is taken whole (the
        bound is exceeded by at most one envelope), so that the work of validating it is never
        thrown away; one larger than the whole queue is taken into an empty queue.
        """
        refusal = self.refusal()
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
        )
        self.depth += events
        self._taken += 1
        self._taken_events += events
        self._pending.add(job)
        self._waiting.append(job)
        self._idle.clear()
        self._queue.put_nowait(job)
        return job.future

    async def run(self) -> None:
        """Publish queued envelopes, group-committed, until cancelled; a sweeper fails the ones
        past their deadline."""
        sweeper = asyncio.create_task(self._sweep(), name="ingest-sweeper")
        try:
            while True:
                jobs = [await self._queue.get()]
                # Let the window fill: every session whose frame is being handled now joins;
                # and while the store is busy with `max_writes` writes, everything that
                # arrives meanwhile joins the next one (the slower the fsync, the bigger).
                await asyncio.sleep(self._window)
                await self._write_room.wait()
                while not self._queue.empty():
                    jobs.append(self._queue.get_nowait())
                for job in jobs:
                    job.written = True
                live = [job for job in jobs if not job.future.done()]
                if live:
                    await self._publish(plan_writes(live, max_bytes=self._max_bytes))
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

    async def _publish(self, writes: list[Write]) -> None:
        js = self._js
        assert js is not None, "attach() before run()"
        for write in writes:
            for job in write.jobs:
                job.remaining += 1
                job.writes.append(write)
        metrics.GROUP_WRITES.inc(len(writes))
        for write in writes:
            jobs = [job for job in write.jobs if not job.future.done()]
            if not jobs:  # every envelope in it timed out meanwhile
                continue
            stall = min(job.deadline for job in jobs) - time.monotonic()
            try:
                if stall <= 0:
                    raise PublishFailed("no JetStream capacity before the deadline")
                write.ack = await js.publish_async(
                    write.subject, write.payload, wait_stall=stall, headers={_MSG_ID: write.msg_id}
                )
            except Exception as err:
                log.warning("publish failed: %s", type(err).__name__)
                for job in jobs:
                    self._finish(job, PublishFailed(type(err).__name__))
                continue
            metrics.GROUP_ENVELOPES.observe(len(write.jobs))
            self._writes += 1
            if self._writes >= self._max_writes:
                self._write_room.clear()
            write.ack.add_done_callback(functools.partial(self._on_ack, write))

    def _on_ack(self, write: Write, ack: asyncio.Future[Any]) -> None:
        self._writes -= 1
        if self._writes < self._max_writes:
            self._write_room.set()
        error: Exception | None = None
        if ack.cancelled():
            error = PublishFailed("cancelled")
        elif (raised := ack.exception()) is not None:
            error = PublishFailed(type(raised).__name__)
        for job in write.jobs:
            if job.future.done():
                continue
            if error is not None:
                self._finish(job, error)
                continue
            job.remaining -= 1
            if job.remaining == 0:
                metrics.PUBLISH_LATENCY.observe(time.monotonic() - job.enqueued)
                self._finish(job, None)

    def _finish(self, job: _Job, error: Exception | None) -> None:
        if job not in self._pending:
            return
        self._pending.discard(job)
        job.written = True
        self.depth -= job.events
        if not self._pending:
            self._idle.set()
        while self._waiters and self.depth < self.capacity:  # room: wake the longest waiter
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if error is None:
            self._stored += job.events
        if not job.future.done():
            if error is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(error)
        for write in job.writes:  # release nats-py's in-flight slot once nobody waits on it
            ack = write.ack
            if ack is not None and not ack.done() and all(j.future.done() for j in write.jobs):
                ack.cancel()

    async def _sweep(self) -> None:
        last, stored = time.monotonic(), self._stored
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = time.monotonic()
            if self._pending:  # busy: how fast the store drains the queue
                self._drain.sample(self._stored - stored, now - last)
            last, stored = now, self._stored
            expired = [job for job in self._pending if job.deadline <= now]
            for job in expired:
                self._finish(job, PublishFailed("no JetStream acknowledgement in time"))
