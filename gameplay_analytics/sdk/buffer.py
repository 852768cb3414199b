"""The SDK's event buffer: encoded events by priority, capped in bytes.

On overflow the lowest priority goes first, oldest first within it; session lifecycle events are
never dropped (so the cap can be exceeded by them alone, which a game never does in practice).
"""

from __future__ import annotations

import collections

from gameplay_analytics.contract.taxonomy import Priority

__all__ = ["DEFAULT_CAP_BYTES", "PriorityBuffer"]

DEFAULT_CAP_BYTES = 1 << 20

_NEVER_DROPPED = Priority.LIFECYCLE
_LEVELS = len(Priority)


class PriorityBuffer:
    """Encoded events waiting for an envelope.

    `reserved` is counted against the cap too: the bytes of sent but unacknowledged envelopes,
    which the SDK must keep for a resend. `dropped` counts overflow drops per priority.
    """

    __slots__ = ("_queues", "cap", "count", "dropped", "reserved", "size")

    def __init__(self, cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        self.cap = cap_bytes
        self._queues: list[collections.deque[bytes]] = [collections.deque() for _ in range(_LEVELS)]
        self.size = 0
        self.count = 0
        self.reserved = 0
        self.dropped: collections.Counter[Priority] = collections.Counter()

    def __len__(self) -> int:
        return self.count

    def push(self, priority: int, event: bytes) -> None:
        self._queues[priority].append(event)
        self.size += len(event)
        self.count += 1
        if self.size + self.reserved > self.cap:
            self._evict()

    def take(self, *, max_events: int, max_bytes: int) -> list[bytes]:
        """Up to `max_events` events totalling at most `max_bytes`, highest priority first.

        An event alone larger than `max_bytes` is still taken when it comes first, so that it
        cannot wedge the buffer (the SDK refuses such events at `track()` anyway).
        """
        taken: list[bytes] = []
        budget = max_bytes
        for queue in reversed(self._queues):
            while queue and len(taken) < max_events:
                size = len(queue[0]) + 1  # the comma between events
                if size > budget and taken:
                    break
                taken.append(queue.popleft())
                budget -= size
                self.size -= size - 1
            if len(taken) >= max_events or (queue and budget < len(queue[0]) + 1):
                break
        self.count -= len(taken)
        return taken

    def counts(self) -> dict[Priority, int]:
        return {Priority(p): len(q) for p, q in enumerate(self._queues) if q}

    def _evict(self) -> None:
        for priority in range(_LEVELS):
            if priority == _NEVER_DROPPED:
                continue
            queue = self._queues[priority]
            while queue and self.size + self.reserved > self.cap:
                self.size -= len(queue.popleft())
                self.count -= 1
                self.dropped[Priority(priority)] += 1
            if self.size + self.reserved <= self.cap:
                return
