"""Consumer lag in seconds against a real nats-server: 0 when idle, growing while stuck."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable

from nats.js import JetStreamContext

from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.runtime.aggregator.consumer import ConsumerLag
from tests.integration.support import batch, event, next_seq, publish, settings, wait_for


def _gauge(agg: Aggregator, name: str) -> float:
    value = agg.metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_lag_is_zero_when_idle_grows_while_stuck_and_drains(
    nats_url: str, database: str, js: JetStreamContext
) -> None:
    # Older messages of other tests sit before `start` in the shared stream: a consumer that
    # starts after them must not count them (its ack floor starts just before `start`).
    earlier = str(uuid.uuid4())
    await publish(js, [batch(earlier, earlier, [event(1)])])  # another consumer's business
    await asyncio.sleep(2.0)
    start = await next_seq(js)
    agg = Aggregator(settings(nats_url, database, lag_interval_s=0.1), start_sequence=start)
    await agg.start()  # lag is read in the background, but nothing consumes yet: stuck
    run: asyncio.Task[None] | None = None
    try:
        await wait_for(lambda: _read(agg, lambda lag: lag == ConsumerLag(0, 0.0)))
        player, guid = str(uuid.uuid4()), str(uuid.uuid4())
        published = time.time()
        await publish(js, [batch(player, guid, [event(k)]) for k in range(3)])
        await wait_for(lambda: _read(agg, lambda lag: lag.pending == 3 and lag.seconds >= 0.5))
        first = _gauge(agg, "analytics_consumer_lag_seconds")
        # The age of these messages, not of the one published 2 s before them.
        assert first <= time.time() - published + 0.5
        await asyncio.sleep(0.6)
        assert _gauge(agg, "analytics_consumer_lag_seconds") >= first + 0.3
        assert _gauge(agg, "analytics_consumer_pending_messages") == 3

        run = asyncio.create_task(agg.run())
        await wait_for(lambda: _read(agg, lambda lag: lag == ConsumerLag(0, 0.0)))
        assert agg.stats.persisted == 3
    finally:
        agg.request_stop()
        if run is not None:
            await asyncio.wait_for(run, 30)
        await agg.close()


async def _read(agg: Aggregator, check: Callable[[ConsumerLag], bool]) -> bool:
    """The exported gauges as a ConsumerLag, checked by `check`."""
    lag = ConsumerLag(
        int(_gauge(agg, "analytics_consumer_pending_messages")),
        _gauge(agg, "analytics_consumer_lag_seconds"),
    )
    return check(lag)


def test_lag_of_pending_messages_is_their_age_and_never_negative() -> None:
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    assert ConsumerLag.of(2, 1, now - dt.timedelta(seconds=90), now=now) == ConsumerLag(3, 90.0)
    assert ConsumerLag.of(0, 0, now - dt.timedelta(seconds=90), now=now) == ConsumerLag(0, 0.0)
    assert ConsumerLag.of(1, 0, None, now=now) == ConsumerLag(1, 0.0)  # oldest gone: unknown
    assert ConsumerLag.of(1, 0, now + dt.timedelta(seconds=2), now=now) == ConsumerLag(1, 0.0)
