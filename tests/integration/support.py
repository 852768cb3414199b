"""Helpers shared by the aggregator and storage integration tests (no tests in here; the
fixtures `database`, `js` and `geoip_db` are in conftest.py).

Each test gets a database of its own on the session's Postgres server and a consumer that
starts after whatever the stream already holds (`aggregating`), so tests never see each
other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import (
    DLQ_SUBJECT,
    EVENTS_SUBJECT,
    STREAM,
    EventBatch,
    PublishedEvent,
    RawEventBatch,
    encode_batch,
    msg_id,
)
from gameplay_analytics.privacy import profile
from gameplay_analytics.privacy.edge import EdgeKeys, seal
from gameplay_analytics.privacy.geoip import open_geoip
from gameplay_analytics.privacy.pseudonym import SaltBook
from gameplay_analytics.runtime.aggregator import Aggregator, AggregatorSettings

DAY_MS = 86_400_000
# Events are stamped "now": the aggregator's maintenance runs on the real clock, and the
# hot retention would rightly delete events days old.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
NOW_MS = int(NOW.timestamp() * 1000)


async def next_seq(js: JetStreamContext) -> int:
    """The stream sequence the next published message will get."""
    info = await js.stream_info(STREAM)
    return int(info.state.last_seq) + 1


def settings(nats_url: str, dsn: str, **extra: Any) -> AggregatorSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "postgres_dsn": dsn,
        "metrics_port": 0,
        "consumer_name": f"agg-{uuid.uuid4().hex[:10]}",
        "fetch_timeout_s": 0.2,
        "ack_wait_s": 2.0,
        "retry_base_s": 0.05,
        "retry_max_s": 0.5,
        "maintenance_interval_s": 3600,
        "lag_interval_s": 0.2,
    }
    values.update(extra)
    return AggregatorSettings.model_validate(values)


def event(seq: int, name: str = "xp_gain", *, ts: int = NOW_MS, **props: Any) -> PublishedEvent:
    defaults: dict[str, dict[str, Any]] = {
        "xp_gain": {"amount": 10, "source": "quest"},
        "engage_enemy": {"enemy_id": "orc_7", "tier": "boss"},
        "session_start": {},
        "session_end": {"reason": "logout"},
        "party_join": {"party_size": 2},
    }
    return PublishedEvent(seq=seq, name=name, ts=ts, props=props or defaults.get(name, {}))


SALTS = SaltBook(secret="test-secret")


def edge_keys(
    *,
    geoip_db: Path | None = None,
    profile_secret: str | None = None,
    salt_secret: str | None = None,
) -> EdgeKeys:
    """The keys of the gateway these tests stand in for (the edge step, privacy/edge.py)."""
    salts = SALTS if salt_secret is None else SaltBook(secret=salt_secret)
    secret = profile.profile_secret(profile_secret, salts)
    assert secret is not None
    return EdgeKeys(salts=salts, profile_secret=secret, geoip=open_geoip(geoip_db))


KEYS = edge_keys()


def raw_batch(
    player: str,
    guid: str,
    events: Sequence[PublishedEvent],
    *,
    session: str = "s-1",
    ip: str | None = "81.2.69.142",
    **extra: Any,
) -> RawEventBatch:
    """A format-1 batch: what the gateway received, or what a legacy gateway published."""
    made = RawEventBatch(
        session_id=session, player_uuid=player, client_guid=guid, schema_version="1.0.0",
        received_at=NOW_MS, events=list(events), client_ip=ip, shard="eu-1", region="eu-west",
        build="2025.10.1+abc", platform="win64", latency_bucket="lt50", envelope_id=1,
    )  # fmt: skip
    return msgspec.structs.replace(made, **extra) if extra else made


def batch(
    player: str,
    guid: str,
    events: Sequence[PublishedEvent],
    *,
    session: str = "s-1",
    ip: str | None = "81.2.69.142",
    keys: EdgeKeys = KEYS,
    **extra: Any,
) -> EventBatch:
    """A batch as the gateway publishes it: `raw_batch` through the edge step."""
    return seal(raw_batch(player, guid, events, session=session, ip=ip, **extra), keys)


async def publish(
    js: JetStreamContext, batches: Sequence[EventBatch | RawEventBatch], *, dedup: bool = True
) -> None:
    for b in batches:
        headers = None
        if dedup and b.events:
            key = b.player_uuid if isinstance(b, RawEventBatch) else b.profile_key or ""
            headers = {"Nats-Msg-Id": msg_id(key, b.client_guid, b.events[0].seq, b.events[-1].seq)}
        await js.publish(EVENTS_SUBJECT, encode_batch(b), headers=headers)


async def wait_for(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {within}s")


async def count_rows(dsn: str, table: str = "analytics_events") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    except asyncpg.UndefinedTableError:  # not migrated yet
        return 0
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def aggregating(
    nats_url: str, dsn: str, js: JetStreamContext, **extra: Any
) -> AsyncIterator[Aggregator]:
    """A running aggregator (`settings` with `extra`) that consumes what is published from now
    on; stopped gracefully afterwards."""
    agg = Aggregator(settings(nats_url, dsn, **extra), start_sequence=await next_seq(js))
    async with running(agg):
        yield agg


@contextlib.asynccontextmanager
async def running(agg: Aggregator) -> AsyncIterator[Aggregator]:
    """Start an aggregator, consume in a task, stop it gracefully afterwards."""
    await agg.start()
    task = asyncio.create_task(agg.run())
    try:
        yield agg
    finally:
        agg.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await agg.close()


async def dlq_entries(js: JetStreamContext, start: int, *, settle: float = 0.3) -> list[bytes]:
    """Payloads on analytics.dlq from stream sequence `start` on."""
    await asyncio.sleep(settle)
    sub = await js.pull_subscribe(
        DLQ_SUBJECT, stream=STREAM,
        config=nats.js.api.ConsumerConfig(
            deliver_policy=nats.js.api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
            ack_policy=nats.js.api.AckPolicy.NONE,
        ),
    )  # fmt: skip
    found: list[bytes] = []
    try:
        while True:
            msgs = await sub.fetch(100, timeout=0.5)
            found.extend(m.data for m in msgs)
    except TimeoutError:  # nats.errors.TimeoutError, or asyncio's on a spent deadline
        pass
    finally:
        await sub.unsubscribe()
    return found
