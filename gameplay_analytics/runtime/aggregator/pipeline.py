"""The aggregator's run loop: fetch and prepare while the previous batch commits.

One fetch is always outstanding (unless the batch being gathered is full) and one commit runs
at a time. What arrives while a commit runs is fetched and prepared meanwhile, and committed
as the next batch the moment that commit ends: a message waits for at most the commit in
progress and its own, never for a batch that was fetched early and then sat waiting (the old
loop fetched the next batch right after starting a commit, so what arrived during the commit
waited for one more commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg

from gameplay_analytics.runtime.aggregator import retry

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)

_P = TypeVar("_P")


@dataclasses.dataclass(slots=True)
class _Gathered(Generic[_P]):
    """The next batch: messages fetched and prepared while a commit ran."""

    msgs: list[Msg] = dataclasses.field(default_factory=list)
    prepared: list[_P] = dataclasses.field(default_factory=list)
    started: float = 0.0  # perf_counter() of its first fetch


class Pipeline(Generic[_P]):
    """`run()` until `stopping` is set; then the fetch in flight ends, what it brought is
    committed, and `run()` returns. A commit that shutdown cut short (`retry.GaveUp`) leaves
    its messages and the gathered ones nak'd for redelivery.

    `fetch(n)` returns up to n messages ([] after its timeout); `prepare` turns them into
    the commit's input and may raise (a bug: those messages are given back, the rest go on);
    `commit(msgs, prepared, started)` stores and acks them.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[int], Coroutine[Any, Any, list[Msg]]],
        prepare: Callable[[Sequence[Msg]], Awaitable[list[_P]]],
        commit: Callable[[Sequence[Msg], list[_P], float], Coroutine[Any, Any, object]],
        give_back: Callable[[Sequence[Msg], Exception], Awaitable[object]],
        max_messages: int,
        stopping: asyncio.Event,
    ) -> None:
        self._fetch = fetch
        self._prepare = prepare
        self._commit = commit
        self._give_back = give_back
        self._max = max_messages
        self._stopping = stopping

    async def run(self) -> None:
        gathered: _Gathered[_P] = _Gathered()
        committing: asyncio.Task[object] | None = None
        in_commit: list[Msg] = []
        fetching: asyncio.Task[list[Msg]] | None = None
        try:
            while True:
                if committing is None and gathered.msgs:
                    in_commit = gathered.msgs
                    committing = asyncio.create_task(
                        self._commit(gathered.msgs, gathered.prepared, gathered.started)
                    )
                    gathered = _Gathered()
                room = self._max - len(gathered.msgs)
                if fetching is None and room > 0 and not self._stopping.is_set():
                    fetching = asyncio.create_task(self._fetch(room))
                waiting = {t for t in (fetching, committing) if t is not None}
                if not waiting:
                    return  # stopping, and nothing in flight or gathered
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if committing is not None and committing in done:
                    task, committing = committing, None
                    task.result()  # retry.GaveUp ends the loop; other errors are handled inside
                    in_commit = []
                if fetching is not None and fetching in done:
                    task_f, fetching = fetching, None
                    await self._gather(gathered, task_f.result())
        except retry.GaveUp:
            held = [*in_commit, *gathered.msgs]
            if fetching is not None:  # a fetch started before the stop: its messages too
                with contextlib.suppress(Exception):
                    held += await fetching
                fetching = None
            log.warning("shutdown: leaving %d unstored messages for redelivery", len(held))
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.nak()
        finally:
            for pending in (fetching, committing):
                if pending is not None and not pending.done():
                    pending.cancel()

    async def _gather(self, gathered: _Gathered[_P], msgs: list[Msg]) -> None:
        if not msgs:
            return
        started = time.perf_counter()
        try:
            prepared = await self._prepare(msgs)
        except Exception as err:  # a bug in preparation: give these messages back
            await self._give_back(msgs, err)
            return
        if not gathered.msgs:
            gathered.started = started
        gathered.msgs.extend(msgs)
        gathered.prepared.extend(prepared)
