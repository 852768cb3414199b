"""Events on their way to the gateway: the capped priority buffer, the envelopes sent and not
yet settled, and (with a state directory) the unacked events persisted across a crash."""

from __future__ import annotations

import msgspec

from gameplay_analytics.sdk.buffer import PriorityBuffer
from gameplay_analytics.sdk.inflight import Envelope, InFlight
from gameplay_analytics.sdk.pending import PendingEvents

__all__ = ["ENVELOPE_OVERHEAD", "Outbox"]

ENVELOPE_OVERHEAD = 128
"""Bytes of an `analytics` frame around its events (type, id, schema), with room to spare."""


class Outbox:
    """Buffer → envelope → in flight → settled; the persisted copy follows each step."""

    __slots__ = ("_head", "_next_id", "buffer", "flight", "pending")

    def __init__(self, cap_bytes: int, schema: str) -> None:
        self.buffer = PriorityBuffer(cap_bytes)
        self.flight = InFlight()
        self.pending: PendingEvents | None = None
        self._next_id = 1
        self._head = msgspec.json.encode(schema)

    def add(self, priority: int, seq: int, name: str, data: bytes) -> bool:
        """Buffer one encoded event (and persist it when it must survive a crash); True when
        the buffer overflowed and dropped something."""
        buffer = self.buffer
        before = buffer.count
        buffer.push(priority, data)
        pending = self.pending
        if pending is not None and pending.wants(priority):
            pending.note_session(name)
            pending.add(seq, priority, data)
        return buffer.count <= before

    def envelope(self, *, max_events: int, max_frame_bytes: int) -> Envelope:
        """The next new envelope from the buffer; its bytes count against the cap until it
        is settled."""
        events = self.buffer.take(
            max_events=max_events, max_bytes=max_frame_bytes - ENVELOPE_OVERHEAD
        )
        ident = self._next_id
        self._next_id += 1
        head = b'{"type":"analytics","id":%d,"schema":%s,"events":[' % (ident, self._head)
        frame = head + b",".join(events) + b"]}"
        self.buffer.reserved += len(frame)
        return Envelope(ident, frame, len(events))

    def forget(self, envelope: Envelope) -> None:
        """The envelope is settled for good (acked, or refused as malformed)."""
        self.buffer.reserved -= len(envelope.frame)
        pending = self.pending
        if pending is not None and len(pending):
            pending.settle(list(envelope.seqs()))

    def recover(self, pending: PendingEvents) -> int:
        """Persist from now on in `pending`, and put an earlier run's unacked events back in
        the buffer, unchanged; returns how many."""
        self.pending = pending
        recovered = pending.recovered()
        for priority, event in recovered:
            self.buffer.push(priority, event)
        return len(recovered)

    def flush_pending(self) -> None:
        """Write the persisted copy if it changed (acks settled, or non-lifecycle adds)."""
        if self.pending is not None:
            self.pending.flush()
