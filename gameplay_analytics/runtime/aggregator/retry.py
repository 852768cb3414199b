"""Which failures are worth retrying, and the exponential backoff with jitter between tries.

Transient: the database or NATS is away, slow or overloaded. Poison: Postgres refuses the
data itself (class 22 data exceptions, 23 integrity violations other than the unique key the
write path handles), which no retry can fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import nats.errors

__all__ = ["TRANSIENT", "Backoff", "GaveUp", "error_kind", "is_poison", "retrying"]

_T = TypeVar("_T")

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    # Postgres terminating a connection mid-COPY leaves asyncpg's protocol mid-operation; the
    # pool's release then raises this (after discarding the connection). Seen in tests/chaos.
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,  # serialization failures, deadlocks
    asyncpg.UndefinedTableError,  # the schema is being restored: wait for it
    nats.errors.Error,
)


def is_poison(err: BaseException) -> bool:
    """The rows themselves cannot be stored, so retrying them cannot succeed: Postgres refused
    them, or a value does not fit its column (asyncpg raises OverflowError while encoding,
    before Postgres sees anything). Such a batch is split and the culprit dead-lettered."""
    return isinstance(
        err, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError | OverflowError
    )


def error_kind(err: BaseException) -> str:
    """A small, fixed label set for `analytics_aggregator_errors_total{kind}`."""
    if isinstance(err, nats.errors.Error):
        return "nats"
    if isinstance(err, TimeoutError):
        return "timeout"
    if isinstance(err, OSError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
        return "postgres_unavailable"
    if isinstance(err, asyncpg.PostgresError):
        return "postgres"
    return "other"


@dataclasses.dataclass(slots=True)
class Backoff:
    """Delays base·2^n capped at `cap`, each scaled by a random factor in [0.5, 1]
    ("equal jitter"), so replicas that failed together do not retry in lockstep."""

    base: float
    cap: float
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * (2.0**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


class GaveUp(Exception):
    """The next try would start after the caller's deadline (shutdown): leave the work for
    another replica. The last transient error is its `__cause__`."""


async def _no_wait(err: BaseException, delay: float) -> None:
    return None


async def retrying(
    op: Callable[[], Awaitable[_T]],
    *,
    backoff: Backoff,
    on_failure: Callable[[BaseException, float], Awaitable[None]] = _no_wait,
    deadline: Callable[[], float | None] = lambda: None,
    interrupt: asyncio.Event | None = None,
) -> _T:
    """`await op()` until it returns, sleeping `backoff` between tries that fail transiently.

    Anything not in TRANSIENT propagates at once (poison and bugs are the caller's to sort
    out). Before each sleep, `on_failure(err, delay)` counts, logs and keeps messages in
    progress. GaveUp ends the retries when a sleep would end after `deadline()` (a
    `time.monotonic()` instant, or None) or when `interrupt` is set during one.
    """
    while True:
        try:
            return await op()
        except TRANSIENT as err:
            delay = backoff.next_delay()
            end = deadline()
            if end is not None and time.monotonic() + delay > end:
                raise GaveUp from err
            await on_failure(err, delay)
            if interrupt is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(interrupt.wait(), delay)
            except TimeoutError:
                continue
            raise GaveUp from err
