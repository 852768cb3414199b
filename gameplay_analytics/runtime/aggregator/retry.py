"""Which failures are worth retrying, and the exponential backoff with jitter between tries.

Transient: the database or NATS is away, slow or overloaded. Poison: Postgres refuses the
data itself (class 22 data exceptions, 23 integrity violations other than the unique key the
write path handles), which no retry can fix.
"""

from __future__ import annotations

import dataclasses
import random

import asyncpg
import nats.errors

__all__ = ["TRANSIENT", "Backoff", "error_kind", "is_poison"]

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
