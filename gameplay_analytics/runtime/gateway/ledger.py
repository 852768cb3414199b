"""The gateway's durable count of authenticated sessions per day, for the nightly check.

One key per session in the pipeline's sessions KV bucket (`analytics-sessions` locally):
`<YYYY-MM-DD>.<kept|opted_out>.<id>` (UTC day of the `hello`; `opted_out` when
`consent.analytics` is false, since those sessions store nothing). A key per session makes
the write idempotent and the count exact: `count_sessions` reads it with one filtered
consumer's pending count, never listing keys. Recording never delays or fails a session: it
runs in the background, bounded, and a failure is counted in
`analytics_session_ledger_failures_total`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import Counter

from gameplay_analytics.contract.messages import SESSIONS_BUCKET

__all__ = ["SessionLedger", "count_sessions", "ledger_key"]

log = logging.getLogger(__name__)

_MAX_PENDING: Final = 1000  # writes in flight; beyond, a session is counted as a failure
_TIMEOUT_S: Final = 5.0

FAILURES = Counter(
    "analytics_session_ledger_failures_total",
    "Authenticated sessions the gateway could not record in the sessions ledger",
)


def ledger_key(day: dt.date, session_id: str, *, kept: bool) -> str:
    return f"{day.isoformat()}.{'kept' if kept else 'opted_out'}.{session_id}"


async def count_sessions(
    js: JetStreamContext, day: dt.date, *, bucket: str = SESSIONS_BUCKET, kept: bool = True
) -> int:
    """Sessions recorded for `day` (kept, or opted out): the pending count of a consumer
    filtered to that day's keys, so the answer costs one request whatever the count."""
    stream = f"KV_{bucket}"
    subject = f"$KV.{bucket}.{ledger_key(day, '*', kept=kept)}"
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
        ),
    )
    try:
        info = await sub.consumer_info()
        return int(info.num_pending or 0)
    finally:
        await sub.unsubscribe()


class SessionLedger:
    """Records each authenticated session once, in the background."""

    def __init__(self, bucket: str = SESSIONS_BUCKET) -> None:
        self._bucket = bucket
        self._kv: KeyValue | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def attach(self, js: JetStreamContext) -> None:
        """Bind to the bucket; without it (not created yet) sessions are counted as failures."""
        try:
            self._kv = await js.key_value(self._bucket)
        except BucketNotFoundError:
            log.warning("no %s bucket: sessions are not recorded for the check", self._bucket)

    def record(self, session_id: str, *, kept: bool, now: dt.datetime | None = None) -> None:
        kv = self._kv
        if kv is None or len(self._pending) >= _MAX_PENDING:
            FAILURES.inc()
            return
        day = (now or dt.datetime.now(dt.UTC)).date()
        task = asyncio.create_task(self._put(kv, ledger_key(day, session_id, kept=kept)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait (bounded) for the writes in flight, at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=_TIMEOUT_S)

    @staticmethod
    async def _put(kv: KeyValue, key: str) -> None:
        try:
            await asyncio.wait_for(kv.put(key, b""), _TIMEOUT_S)
        except Exception as err:  # a lost count is counted, never raised
            FAILURES.inc()
            log.warning("session not recorded in the ledger (%s)", type(err).__name__)
