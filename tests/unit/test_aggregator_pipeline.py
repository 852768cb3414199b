"""The aggregator's run loop (runtime/aggregator/pipeline.py) with a stand-in stream: what
arrives while a batch commits is gathered and committed next, as one batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from nats.aio.msg import Msg

from gameplay_analytics.runtime.aggregator import retry
from gameplay_analytics.runtime.aggregator.pipeline import Pipeline
from tests.polling import eventually


class Stream:
    """Messages (ints standing for Msg) handed out as a JetStream pull does: what is there,
    at once, else the first to arrive within the timeout."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.arrived = asyncio.Event()
        self.fetches: list[int] = []

    def put(self, *items: int) -> None:
        self.items.extend(items)
        self.arrived.set()

    async def fetch(self, n: int) -> list[Msg]:
        self.fetches.append(n)
        if not self.items:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.05)
            except TimeoutError:
                return []
        out, self.items = self.items[:n], self.items[n:]
        return cast(list[Msg], out)


async def test_what_arrives_during_a_commit_is_the_next_batch() -> None:
    stream, stopping = Stream(), asyncio.Event()
    commits: list[list[Any]] = []
    release = asyncio.Event()

    async def prepare(msgs: Sequence[Msg]) -> list[int]:
        return [10 * cast(int, m) for m in msgs]

    async def commit(msgs: Sequence[Msg], prepared: list[int], started: float) -> None:
        commits.append(list(prepared))
        await release.wait()

    async def give_back(msgs: Sequence[Msg], err: Exception) -> None:
        raise AssertionError(err)

    pipeline = Pipeline(fetch=stream.fetch, prepare=prepare, commit=commit, give_back=give_back,
                        max_messages=4, stopping=stopping)  # fmt: skip
    running = asyncio.create_task(pipeline.run())
    stream.put(1)
    await eventually(lambda: bool(commits))
    for item in (2, 3, 4, 5, 6):  # during the first commit, one by one
        stream.put(item)
        await asyncio.sleep(0.01)
    assert commits == [[10]]
    assert stream.items == [6]  # the gathered batch is capped at 4: no fetch for more
    release.set()
    await eventually(lambda: len(commits) == 3)
    assert commits == [[10], [20, 30, 40, 50], [60]]
    stopping.set()
    await asyncio.wait_for(running, 2)


async def test_a_preparation_bug_gives_those_messages_back_and_goes_on() -> None:
    stream, stopping = Stream(), asyncio.Event()
    committed: list[list[Any]] = []
    given_back: list[list[Any]] = []

    async def prepare(msgs: Sequence[Msg]) -> list[int]:
        if 13 in msgs:
            raise ValueError("a bug")
        return list(cast(list[int], msgs))

    async def commit(msgs: Sequence[Msg], prepared: list[int], started: float) -> None:
        committed.append(prepared)

    async def give_back(msgs: Sequence[Msg], err: Exception) -> None:
        given_back.append(list(msgs))

    pipeline = Pipeline(fetch=stream.fetch, prepare=prepare, commit=commit, give_back=give_back,
                        max_messages=8, stopping=stopping)  # fmt: skip
    running = asyncio.create_task(pipeline.run())
    stream.put(13)
    await asyncio.sleep(0.02)
    stream.put(7)
    await eventually(lambda: bool(committed))
    stopping.set()
    await asyncio.wait_for(running, 2)
    assert given_back == [[13]] and committed == [[7]]


class Naked:
    """A message that records its nak (what shutdown does with what it could not store)."""

    def __init__(self, n: int, naked: list[int]) -> None:
        self.n, self._naked = n, naked

    async def nak(self) -> None:
        self._naked.append(self.n)


async def test_a_commit_cut_short_by_shutdown_naks_every_message_in_hand() -> None:
    stream, stopping = Stream(), asyncio.Event()
    naked: list[int] = []
    release = asyncio.Event()

    async def prepare(msgs: Sequence[Msg]) -> list[int]:
        return [cast(Naked, m).n for m in msgs]

    async def commit(msgs: Sequence[Msg], prepared: list[int], started: float) -> None:
        await release.wait()
        raise retry.GaveUp("shutdown")

    async def give_back(msgs: Sequence[Msg], err: Exception) -> None:
        raise AssertionError(err)

    pipeline = Pipeline(fetch=stream.fetch, prepare=prepare, commit=commit, give_back=give_back,
                        max_messages=8, stopping=stopping)  # fmt: skip
    running = asyncio.create_task(pipeline.run())
    stream.items.append(cast(int, Naked(1, naked)))
    stream.arrived.set()
    await eventually(lambda: not stream.items)
    await asyncio.sleep(0.01)
    stream.put(cast(int, Naked(2, naked)))  # gathered while the first commit runs
    await eventually(lambda: not stream.items)
    stopping.set()
    release.set()
    await asyncio.wait_for(running, 2)
    assert sorted(naked) == [1, 2]
