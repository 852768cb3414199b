"""Whether the warm store answers, for the aggregator's `/readyz`: checked off the event loop,
so a slow or unreachable object store never stalls the consumer.
"""

from __future__ import annotations

import asyncio
import logging

from gameplay_analytics.runtime.storage.warm import WarmStore

__all__ = ["WarmStoreProbe"]

log = logging.getLogger(__name__)


class WarmStoreProbe:
    """Whether the warm store answers, for `/readyz`: checked off the event loop, every
    `interval_s` until it answers and every `healthy_interval_s` afterwards. `problem` is
    None when the last check passed, else the reason (the aggregator is then not ready, and
    keeps storing to Postgres; the export catches up once the store is back)."""

    def __init__(
        self,
        store: WarmStore,
        *,
        timeout_s: float = 30.0,
        interval_s: float = 5.0,
        healthy_interval_s: float = 60.0,
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._interval_s, self._healthy_interval_s = interval_s, healthy_interval_s
        self.problem: str | None = f"warm store {store.root.uri} not checked yet"

    async def check_once(self) -> str | None:
        problem: str | None = None
        try:
            await asyncio.wait_for(asyncio.to_thread(self._store.check), self._timeout_s)
        except TimeoutError:
            problem = f"warm store {self._store.root.uri}: no answer in {self._timeout_s:g}s"
        except (OSError, ValueError) as err:  # pyarrow raises OSError for S3 errors
            problem = f"warm store {self._store.root.uri}: {str(err).splitlines()[0][:300]}"
        if problem != self.problem:
            if problem is None:
                log.info("warm store %s reachable", self._store.root.uri)
            else:
                log.warning("%s (not ready until it answers)", problem)
        self.problem = problem
        return problem

    async def run(self) -> None:
        while True:
            problem = await self.check_once()
            await asyncio.sleep(self._interval_s if problem else self._healthy_interval_s)
