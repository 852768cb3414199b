"""`up` keeps its gateway and aggregators running: a part that exits is started again after a
bounded, growing delay, and every exit and restart is said on stderr and in endpoints.json.

`Backoff` is the pure rule; `Supervisor.check()` is one pass over the parts (no thread: `up`'s
main loop calls it). A part that ran `healthy_after_s` before it exited starts a new streak,
so a crash a day restarts at once while a crash loop waits up to `max_s` between tries.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

__all__ = ["CHECK_INTERVAL_S", "Backoff", "PartStatus", "Supervised", "Supervisor"]

CHECK_INTERVAL_S = 0.5
"""How often `up` looks at its parts."""


class Supervised(Protocol):
    """What the supervisor needs of a part (a `stack.RuntimeProcess`)."""

    role: str

    @property
    def pid(self) -> int | None: ...

    def exit_code(self) -> int | None: ...

    def start(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    healthy_after_s: float = 60.0

    def delay(self, streak: int) -> float:
        """Seconds before restart number `streak` (0-based) of a crash loop."""
        return min(self.max_s, self.initial_s * self.factor**streak)


@dataclasses.dataclass(slots=True)
class PartStatus:
    """One part as endpoints.json and `gameplay-analytics status` show it."""

    role: str
    state: Literal["running", "restarting"] = "running"
    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    streak: int = 0
    started_at: float = 0.0
    restart_at: float | None = None

    def public(self) -> dict[str, object]:
        return {
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
        }


class Supervisor:
    """Restarts parts that exited; `report` gets one human sentence per event."""

    def __init__(
        self,
        parts: Callable[[], Sequence[Supervised]],
        *,
        report: Callable[[str], None],
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parts = parts
        self._report = report
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._status: dict[str, PartStatus] = {}

    def status(self) -> dict[str, dict[str, object]]:
        return {role: s.public() for role, s in self._status.items()}

    def check(self) -> bool:
        """One pass: note exits, start parts whose delay is over. True when anything changed."""
        now, changed = self._clock(), False
        for part in self._parts():
            status = self._status.setdefault(
                part.role, PartStatus(part.role, pid=part.pid, started_at=now)
            )
            if status.state == "running":
                code = part.exit_code()
                if code is None:
                    continue
                ran = now - status.started_at
                status.streak = 0 if ran >= self._backoff.healthy_after_s else status.streak + 1
                delay = self._backoff.delay(max(0, status.streak - 1))
                status.state, status.pid, status.last_exit_code = "restarting", None, code
                status.restart_at = now + delay
                self._report(
                    f"{part.role} exited with code {code} after {ran:.0f} s; "
                    f"restarting in {delay:g} s"
                )
                changed = True
            elif status.restart_at is not None and now >= status.restart_at:
                part.start()
                status.state, status.pid, status.started_at = "running", part.pid, now
                status.restart_at = None
                status.restarts += 1
                self._report(f"{part.role} restarted (pid {part.pid}, restart {status.restarts})")
                changed = True
        return changed
