"""Whether the warm store answers, for the aggregator's `/readyz`: checked off the event loop,
so a slow or unreachable object store never stalls the consumer.

The check runs on a daemon thread of its own, not the loop's default executor: a pyarrow S3
call that never returns (seen: the AWS SDK waiting on a metadata address that accepts and
never answers) cannot be cancelled, and the default executor's threads are joined when the
loop shuts down, so one stuck check kept the whole process from exiting. One check at a time:
while a stuck one is still running, no other is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

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
        self._thread: threading.Thread | None = None

    async def check_once(self) -> str | None:
        problem: str | None = None
        try:
            if self._thread is not None and self._thread.is_alive():
                raise TimeoutError  # the last check is still waiting for an answer
            done, self._thread = _on_daemon_thread(self._store.check, name="warm-store-check")
            await asyncio.wait_for(done, self._timeout_s)
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


def _on_daemon_thread(
    call: Callable[[], None], *, name: str
) -> tuple[asyncio.Future[None], threading.Thread]:
    """Run `call` on a new daemon thread; the future settles on the running loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(err: BaseException | None) -> None:
        if done.done():  # timed out meanwhile
            return
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(err)

    def work() -> None:
        err: BaseException | None = None
        try:
            call()
        except BaseException as exc:
            err = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, err)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return done, thread
