"""The warm-store probe: a check that never returns (an S3 call stuck on the network) makes
the aggregator not ready, starts no second check, and does not keep the event loop from
shutting down (the default executor's threads are joined at shutdown; the probe's is not)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from gameplay_analytics.runtime.storage.warm_probe import WarmStoreProbe


class _StuckStore:
    def __init__(self) -> None:
        self.root = SimpleNamespace(uri="s3://warehouse/analytics")
        self.release = threading.Event()
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        self.release.wait()


def test_a_stuck_check_is_not_ready_and_never_blocks_shutdown() -> None:
    store = _StuckStore()
    probe = WarmStoreProbe(store, timeout_s=0.2)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        return [await probe.check_once(), await probe.check_once()]

    try:
        first, second = asyncio.run(main())  # returns: the stuck thread is not joined
        assert first == second == "warm store s3://warehouse/analytics: no answer in 0.2s"
        assert store.calls == 1  # the second check waited for the first, did not start one
    finally:
        store.release.set()


def test_an_answer_after_a_stuck_check_makes_it_ready_again() -> None:
    store = _StuckStore()
    probe = WarmStoreProbe(store, timeout_s=0.2)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        stuck = await probe.check_once()
        store.release.set()
        await asyncio.sleep(0.05)
        return [stuck, await probe.check_once()]

    stuck, answered = asyncio.run(main())
    assert stuck is not None and answered is None and probe.problem is None
    assert store.calls == 2
