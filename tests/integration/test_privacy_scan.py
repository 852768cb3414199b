"""`gameplay-analytics privacy scan`: a raw UUID, an IP and free text planted in each store
(Postgres, Parquet, the stream's events and its DLQ, a log) are each found, and reported
without the values; a clean deployment passes. A NATS server of its own, so other tests'
messages are not scanned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gameplay_analytics.commands.privacy import server_ports
from gameplay_analytics.contract.messages import DLQ_SUBJECT, EVENTS_SUBJECT, encode_bundle
from gameplay_analytics.local.services import NatsServer, free_port
from gameplay_analytics.runtime import jetstream, storage
from tests.integration.support import NOW

REPO = Path(__file__).resolve().parents[2]
PLAYER = str(uuid.uuid4())
IP = "203.0.113.77"
TEXT = "meet me behind the castle"


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[str]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    nc = await nats.connect(server.url)
    await jetstream.ensure_stream(nc.jetstream(), jetstream.StreamSettings.model_validate({}))
    await nc.close()
    yield server.url
    server.stop()


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "privacy", "scan", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


async def _store_event(dsn: str, *, props: dict[str, object], platform: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await storage.migrate(conn)
        values = dict(
            analytics_player_id="c" * 64, client_guid=uuid.uuid4(), seq=1, event_name="xp_gain",
            category="progression", event_ts=NOW, event_day=NOW.date(), received_at=NOW,
            session_id=str(uuid.uuid4()), schema_version="1.0.0", sample_rate=1.0, build=None,
            platform=platform, shard=None, region=None, country=None, latency_bucket=None,
            props=json.dumps(props), geo_region=None, envelope_id=None, stream_seq=None,
            source="client",
        )  # fmt: skip
        await storage.write_batch(conn, [tuple(values[c] for c in storage.EVENT_COLUMNS)])
    finally:
        await conn.close()


async def test_scan_finds_what_is_planted_in_each_store(
    database: str, own_nats: str, tmp_path: Path
) -> None:
    await _store_event(database, props={"enemy_id": PLAYER, "source": TEXT}, platform=IP)
    day = tmp_path / "wh" / "gameplay" / "event_date=2025-10-01"
    day.mkdir(parents=True)
    row = {"client_guid": str(uuid.uuid4()), "props": json.dumps({"source": TEXT}),
           "platform": IP, "build": PLAYER}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([row]), day / "data.parquet")
    nc = await nats.connect(own_nats)
    entry = {"source": "gateway", "reason": "invalid_event", "detail": f"{PLAYER} from {IP}",
             "at": 1, "client_guid": str(uuid.uuid4())}  # fmt: skip
    await nc.jetstream().publish(DLQ_SUBJECT, json.dumps(entry).encode())
    # A raw (format-1) batch on analytics.events, in a bundle behind a clean format-2 one.
    clean = {
        "session_id": "s",
        "client_guid": str(uuid.uuid4()),
        "schema_version": "1.0.0",
        "received_at": 1,
        "events": [],
        "player_ids": {"2025-10": "a" * 64},
    }
    raw = {**clean, "player_uuid": PLAYER, "client_ip": IP}
    del raw["player_ids"]
    bundle = encode_bundle([json.dumps(clean).encode(), json.dumps(raw).encode()])
    await nc.jetstream().publish(EVENTS_SUBJECT, bundle)
    await nc.close()
    log = tmp_path / "logs" / "gateway.log"
    log.parent.mkdir()
    log.write_text(f"INFO connection from {IP}\nINFO player {PLAYER} joined\n")

    found = _scan("--dsn", database, "--root", str(tmp_path / "wh"), "--nats-url", own_nats,
                  "--logs", str(log.parent))  # fmt: skip
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    for where, what in [
        ("postgres:analytics_events", "player_uuid"),
        ("postgres:analytics_events", "ip"),
        ("postgres:analytics_events", "chat_text"),
        ("parquet:gameplay/event_date=2025-10-01/data.parquet", "player_uuid"),
        ("parquet:gameplay/event_date=2025-10-01/data.parquet", "ip"),
        ("parquet:gameplay/event_date=2025-10-01/data.parquet", "chat_text"),
        ("dlq", "player_uuid"),
        ("dlq", "ip"),
        ("stream:events", "player_uuid"),
        ("stream:events", "ip"),
        ("log:gateway.log", "ip"),
    ]:
        assert any(line.startswith(where) and f": {what}:" in line for line in lines), (where, what)
    assert PLAYER not in found.stdout and IP not in found.stdout  # reported, not repeated
    # Told which players to look for, the scan also finds the one in the log.
    players = tmp_path / "players.txt"
    players.write_text(PLAYER + "\n")
    named = _scan("--logs", str(log), "--players-file", str(players))
    assert any(
        line.startswith("log:gateway.log: player_uuid:") for line in named.stdout.split("\n")
    )


async def test_scan_passes_a_clean_deployment(database: str, own_nats: str, tmp_path: Path) -> None:
    await _store_event(database, props={"amount": 3, "source": "quest"}, platform="win64")
    log = tmp_path / "aggregator.log"
    log.write_text("INFO listening on 127.0.0.1:4222\nINFO exported 2025-10-01: 1 rows\n")
    clean = _scan("--dsn", database, "--root", str(tmp_path), "--nats-url", own_nats,
                  "--logs", str(log), "--server-port", "4222")  # fmt: skip
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "findings=0" in clean.stdout


def test_every_server_endpoints_json_names_is_a_server_port() -> None:
    """Each node of a cluster's comma-separated NATS URL (it once crashed the scan: one URL's
    port parsed as '4222,nats:'); a DSN with a socket host has no port to allow."""
    endpoints = {
        "nats_url": "nats://127.0.0.1:4222,nats://u:p@127.0.0.1:4223",
        "postgres_dsn": "postgresql://analytics@/analytics?host=/tmp/pg",
        "ws_url": "ws://127.0.0.1:8080/ws",
        "metrics_urls": {"gateway": "http://127.0.0.1:9100/metrics"},
    }
    assert server_ports(endpoints) == {4222, 4223, 8080, 9100}


def test_a_cluster_nobody_answers_is_an_unreachable_store(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    closed = ",".join(f"nats://127.0.0.1:{free_port()}" for _ in range(3))
    endpoints.write_text(json.dumps({"nats_url": closed}))
    result = _scan("--endpoints", str(endpoints))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "privacy scan: a store is unreachable: ConnectionError"


def test_a_users_file_without_the_privacy_user_is_refused(tmp_path: Path) -> None:
    users = tmp_path / "nats-users.json"
    users.write_text(json.dumps({"admin": "x"}))
    endpoints = tmp_path / "endpoints.json"
    nats_url = f"nats://127.0.0.1:{free_port()}"
    endpoints.write_text(json.dumps({"nats_url": nats_url, "nats_users": str(users)}))
    result = _scan("--endpoints", str(endpoints))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"privacy scan: {users}: no NATS user 'privacy'\n"
