"""Events not yet acknowledged, kept in the state directory so that a crash does not lose them.

The client records each persisted event here when it is tracked and forgets it when its
envelope is acknowledged; after a restart the survivors go back into the buffer, unchanged
(same seq, same bytes), so the server's dedup stores each once even if the ack was all that
was lost. Lifecycle events are always kept; with `everything=True` every unacked event is,
up to `cap_bytes` (oldest non-lifecycle first out).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from gameplay_analytics.contract.taxonomy import Priority
from gameplay_analytics.sdk.state import atomic_write

__all__ = ["DEFAULT_PENDING_CAP_BYTES", "PendingEvents"]

DEFAULT_PENDING_CAP_BYTES = 256 * 1024
_LIFECYCLE = int(Priority.LIFECYCLE)


class PendingEvents:
    """The unacked events of one installation, in `pending-<client_guid>.json`.

    The file is rewritten whole and atomically (without fsync: it must survive the game
    process dying, which the kernel's page cache does; a power cut may lose the last write).
    It also holds whether a session was open, so a restart can tell a crash from a clean exit.
    """

    __slots__ = ("_cap", "_dirty", "_events", "_everything", "_path", "_size", "session_open")

    def __init__(
        self,
        path: Path,
        *,
        everything: bool = False,
        cap_bytes: int = DEFAULT_PENDING_CAP_BYTES,
    ) -> None:
        self._path = path
        self._everything = everything
        self._cap = cap_bytes
        self._events: dict[int, tuple[int, str]] = {}  # seq → (priority, encoded event)
        self._size = 0
        self._dirty = False
        self.session_open = False
        self._load()

    @property
    def path(self) -> Path:
        return self._path

    def __len__(self) -> int:
        return len(self._events)

    def recovered(self) -> list[tuple[int, bytes]]:
        """The events that survived the last run, as (priority, encoded event), by seq."""
        return [(p, e.encode()) for _, (p, e) in sorted(self._events.items())]

    def wants(self, priority: int) -> bool:
        return self._everything or priority == _LIFECYCLE

    def add(self, seq: int, priority: int, event: bytes) -> None:
        """Keep one tracked event; a lifecycle event is written at once (they are rare)."""
        text = event.decode()
        self._events[seq] = (priority, text)
        self._size += len(text)
        if self._size > self._cap:
            self._evict()
        self._dirty = True
        if priority == _LIFECYCLE:
            self.flush()

    def note_session(self, name: str) -> None:
        """Follow the session's lifecycle: open after `session_start`, closed after its end."""
        if name == "session_start":
            self.session_open = True
        elif name in ("session_end", "session_crash"):
            self.session_open = False
        else:
            return
        self._dirty = True

    def settle(self, seqs: list[int]) -> None:
        """These events were acknowledged (or refused for good): forget them."""
        for seq in seqs:
            found = self._events.pop(seq, None)
            if found is not None:
                self._size -= len(found[1])
                self._dirty = True

    def flush(self) -> None:
        """Write the file if anything changed since the last write."""
        if not self._dirty:
            return
        document = {
            "session_open": self.session_open,
            "events": [[seq, p, e] for seq, (p, e) in sorted(self._events.items())],
        }
        with contextlib.suppress(OSError):  # a full disk must not reach the game
            atomic_write(self._path, json.dumps(document).encode(), durable=False)
            self._dirty = False

    def _load(self) -> None:
        try:
            document = json.loads(self._path.read_text())
            self.session_open = document.get("session_open") is True
            for seq, priority, event in document.get("events", []):
                if isinstance(seq, int) and isinstance(priority, int) and isinstance(event, str):
                    self._events[seq] = (priority, event)
                    self._size += len(event)
        except (OSError, ValueError, TypeError, AttributeError):
            return  # no file, or a damaged one: nothing to recover

    def _evict(self) -> None:
        for seq in [s for s, (p, _) in self._events.items() if p != _LIFECYCLE]:
            if self._size <= self._cap:
                return
            self._size -= len(self._events.pop(seq)[1])
