"""Aggregator throughput: events/s from a pre-filled JetStream stream into Postgres (with
validation, pseudonymisation, dedup and acks), as a ratio to raw COPY of the same rows into
the same partitioned, unique-keyed table, one connection each, measured in the same run.
Target ratio >= 0.8 (issue 17). The machine's load drifts: three aggregator runs, each
between two raw COPY runs; the median round is reported, with every round's ratio. CPU per
event is the least of the rounds (the aggregator runs in-process, with the process' GC
policy, `gcpolicy.tune_gc`).

Run: `.venv/bin/python bench/aggregator_bench.py` (about 45 s; starts its own nats-server
and PostgreSQL from the wheels in a temporary folder).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats

from gameplay_analytics.contract.messages import (
    EVENTS_SUBJECT,
    STREAM,
    EventBatch,
    PublishedEvent,
    RawEventBatch,
    encode_batch,
)
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.local.services import NatsServer, PostgresServer
from gameplay_analytics.privacy.edge import EdgeKeys, seal
from gameplay_analytics.privacy.pseudonym import SaltBook
from gameplay_analytics.runtime import jetstream, storage
from gameplay_analytics.runtime.aggregator import Aggregator, AggregatorSettings, Enricher
from gameplay_analytics.runtime.gcpolicy import tune_gc

MESSAGES = 1200  # 300k events: a run long enough that its first, unoverlapped batch weighs little
EVENTS_PER_MESSAGE = 250  # many events per message: JetStream acks cost per message
BATCH_SIZE = 64
TARGET = 0.8
ROUNDS = 3  # aggregator runs, each between two raw COPY runs
_NAMES = [
    ("engage_enemy", {"enemy_id": "orc_7", "tier": "boss"}),
    ("xp_gain", {"amount": 25, "source": "quest"}),
    ("loot_drop", {"item_id": "sword_12", "rarity": "rare"}),
    ("client_tick", {"fps": 59.8}),
    ("damage_dealt", {"amount": 120.5, "tier": "elite"}),
]


_KEYS = EdgeKeys(salts=SaltBook(secret="bench"), profile_secret="bench-profile")


def _messages(now_ms: int) -> list[EventBatch]:
    out = []
    for m in range(MESSAGES):
        player, guid = str(uuid.UUID(int=m % 200 + 1)), str(uuid.UUID(int=m % 200 + 10_000))
        events = [
            PublishedEvent(
                seq=m * EVENTS_PER_MESSAGE + i,
                name=_NAMES[i % 5][0],
                ts=now_ms - 1000 + i,
                props=_NAMES[i % 5][1],
            )
            for i in range(EVENTS_PER_MESSAGE)
        ]
        out.append(seal(RawEventBatch(  # as the gateway publishes it (the edge step)
            session_id=f"s-{m % 200}", player_uuid=player, client_guid=guid,
            schema_version="1.0.0", received_at=now_ms, events=events, client_ip="81.2.69.1",
            shard="eu-1", region="eu-west", build="2025.10.1", platform="win64",
            latency_bucket="lt50",
        ), _KEYS))  # fmt: skip
    return out


async def _fresh_db(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(dsn)
    await storage.migrate(conn)
    await storage.ensure_partitions(conn, today=dt.datetime.now(dt.UTC).date(), ahead_days=2)
    await conn.close()
    return dsn


async def _raw_copy(dsn: str, rows: list[tuple[Any, ...]], chunk: int) -> tuple[float, float]:
    """Rows/s and this process' CPU seconds for them."""
    conn = await asyncpg.connect(dsn)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), chunk):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "analytics_events", records=rows[i : i + chunk], columns=storage.EVENT_COLUMNS
                )
        return len(rows) / (time.perf_counter() - started), time.process_time() - cpu
    finally:
        await conn.close()


async def _aggregator(nats_url: str, dsn: str, start_seq: int, total: int) -> tuple[float, float]:
    """Events/s and this process' CPU seconds for them (the aggregator runs in-process)."""
    settings = AggregatorSettings.model_validate({
        "nats_url": nats_url, "postgres_dsn": dsn, "metrics_port": 0,
        "batch_size": BATCH_SIZE, "fetch_timeout_s": 0.5,
        "consumer_name": f"bench-{uuid.uuid4().hex[:8]}",
    })  # fmt: skip
    agg = Aggregator(settings, start_sequence=start_seq)
    await agg.start()
    tune_gc()  # as run_aggregator does once started
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(agg.run())
    while agg.stats.persisted + agg.stats.deduplicated < total:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    agg.request_stop()
    await task
    await agg.close()
    return total / elapsed, cpu


async def _run(tmp: Path) -> list[dict[str, Any]]:
    nats_server = NatsServer(tmp / "nats")
    postgres = PostgresServer(tmp / "pg" / "data")
    nats_server.start()
    postgres.start()
    try:
        now_ms = int(time.time() * 1000)
        batches = _messages(now_ms)
        total = MESSAGES * EVENTS_PER_MESSAGE
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await jetstream.provision(jetstream.NatsSettings(nats_url=nats_server.url))
        start_seq = int((await js.stream_info(STREAM)).state.last_seq) + 1
        acks = [js.publish(EVENTS_SUBJECT, encode_batch(b)) for b in batches]
        for i in range(0, len(acks), 50):
            await asyncio.gather(*acks[i : i + 50])
        await nc.close()

        # The rows the aggregator will write, built by the same code, for the raw COPY.
        enricher = Enricher(registry=SchemaRegistry.from_released(max_events=100_000))
        rows = [
            row
            for seq, b in enumerate(batches, start_seq)
            for row in enricher.prepare(encode_batch(b), stream_seq=seq, now_ms=now_ms).rows
        ]
        assert len(rows) == total
        # Raw COPY before and after each aggregator run: the machine's load drifts. A round's
        # ratio is its aggregator rate over the mean of the raw rates around it; the figure
        # is the median round (a shared machine's bursts hit single runs).
        chunk = BATCH_SIZE * EVENTS_PER_MESSAGE
        raws = [await _raw_copy(await _fresh_db(postgres.dsn, "bench_raw"), rows, chunk)]
        runs = []
        for _ in range(ROUNDS):
            agg_dsn = await _fresh_db(postgres.dsn, "bench_agg")
            runs.append(await _aggregator(nats_server.url, agg_dsn, start_seq, total))
            conn = await asyncpg.connect(agg_dsn)
            stored = await conn.fetchval("SELECT count(*) FROM analytics_events")
            await conn.close()
            assert stored == total, (stored, total)
            raws.append(await _raw_copy(await _fresh_db(postgres.dsn, "bench_raw"), rows, chunk))
        ratios = [rate / ((raws[i][0] + raws[i + 1][0]) / 2) for i, (rate, _) in enumerate(runs)]
        middle = sorted(range(ROUNDS), key=lambda i: ratios[i])[ROUNDS // 2]
        rate = runs[middle][0]
        return [{
            "component": "aggregator",
            "metric": "events_per_s_into_postgres_with_dedup",
            "value": round(rate),
            "raw": round((raws[middle][0] + raws[middle + 1][0]) / 2),
            "ratio": round(ratios[middle], 3),
            "target": TARGET,
            "round_ratios": [round(r, 3) for r in ratios],
            "round_cpu_us_per_event": [round(c / total * 1e6, 2) for _, c in runs],
            # Less sensitive to a loaded machine than the rates: the Python CPU each costs.
            "cpu_us_per_event": round(min(c for _, c in runs) / total * 1e6, 2),
            "raw_cpu_us_per_row": round(min(c for _, c in raws) / total * 1e6, 2),
        }]  # fmt: skip
    finally:
        postgres.stop()
        nats_server.stop()


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as tmp:
        return asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    for result in run():
        print(json.dumps(result))
