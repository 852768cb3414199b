"""`gameplay-analytics replay` against real NATS, Postgres and Parquet: from the stream by
sequence range, from JSONL captures and from tick snapshots; a second run stores nothing, and
each event keeps the pseudonym of its own month."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import encode_batch
from gameplay_analytics.privacy.pseudonym import Pseudonymiser, SaltBook
from gameplay_analytics.runtime.storage import warm
from tests.integration.support import (
    DAY_MS,
    NOW,
    NOW_MS,
    batch,
    edge_keys,
    event,
    next_seq,
    publish,
    raw_batch,
)

SECRET = "replay-secret"
REPO = Path(__file__).resolve().parents[2]
OLD_MS = NOW_MS - 40 * DAY_MS  # a closed day of another salt month
ANCIENT_MS = NOW_MS - 400 * DAY_MS  # past the warm retention: too_old


def _replay(*args: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GAMEPLAY_ANALYTICS_SALT_SECRET": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "replay", *args, "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout)
    return counts


async def _ids(dsn: str) -> dict[dt.date, set[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_day, analytics_player_id FROM analytics_events")
    finally:
        await conn.close()
    found: dict[dt.date, set[str]] = {}
    for r in rows:
        found.setdefault(r[0], set()).add(r[1])
    return found


async def test_replay_from_the_stream_is_idempotent_and_keeps_each_month(
    database: str, js: JetStreamContext, tmp_path: Path, nats_url: str
) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    start = await next_seq(js)
    keys = edge_keys(salt_secret=SECRET)  # the gateway's, and the replay's
    await publish(js, [
        batch(player, guid, [event(1, "session_start"), event(2), event(3)], keys=keys),
        batch(player, guid, [event(4, ts=OLD_MS), event(5, ts=OLD_MS + 1)], keys=keys),
        batch(player, guid, [event(6, ts=ANCIENT_MS)], keys=keys),
        # A format-1 message an older gateway left in the stream (raw UUID and IP): the
        # replay holds the salt, so it seals it with the edge step and stores it.
        raw_batch(player, guid, [event(7)]),
    ])  # fmt: skip
    end = await next_seq(js) - 1
    root = tmp_path / "warehouse"
    args = ["--from-stream", "--start-seq", str(start), "--end-seq", str(end), "--dsn", database,
            "--root", str(root), "--nats-url", nats_url]  # fmt: skip
    first = _replay(*args)
    assert (first["read"], first["stored"], first["deduplicated"]) == (7, 6, 0)
    assert first["dead_lettered"] == 1  # the 400-day-old event: too_old
    old_day = (NOW - dt.timedelta(days=40)).date()
    table = warm.WarmStore(str(root)).read_day(old_day)
    assert table is not None and sorted(table["seq"].to_pylist()) == [4, 5]
    p = Pseudonymiser(SaltBook(secret=SECRET))
    assert set(table["analytics_player_id"].to_pylist()) == {p.player_id(player, day=old_day)}
    assert (await _ids(database))[NOW.date()] == {p.player_id(player, day=NOW.date())}

    second = _replay(*args)
    assert (second["read"], second["stored"], second["deduplicated"]) == (7, 0, 6)
    again = warm.WarmStore(str(root)).read_day(old_day)
    assert again is not None and again.num_rows == 2


async def test_replay_from_captures_and_snapshots(database: str, tmp_path: Path) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    capture = tmp_path / "capture.jsonl"
    # Captures of what the gateways received: raw (format 1), sealed by the replay.
    lines = [encode_batch(raw_batch(player, guid, [event(i, ts=OLD_MS + i)])).decode()
             for i in range(1, 4)]  # fmt: skip
    capture.write_text("\n".join([*lines, "not a message", lines[0]]) + "\n")
    root = tmp_path / "warehouse"
    found = _replay("--from-jsonl", str(capture), "--dsn", database, "--root", str(root))
    figures = (found["read"], found["stored"], found["deduplicated"], found["dead_lettered"])
    assert figures == (5, 3, 1, 1)  # the bad line counts as one, dead-lettered

    snapshot = tmp_path / "snapshots" / "tick-1.json"
    snapshot.parent.mkdir()
    snapshot.write_text(json.dumps({
        "ts": OLD_MS, "shard": "sim-1", "players": [{
            "player_uuid": player, "client_guid": str(uuid.uuid4()), "session_id": "sim-s",
            "events": [{"seq": 1, "name": "xp_gain", "ts": OLD_MS, "props": {"amount": 5,
                                                                            "source": "sim"}}],
        }],
    }))  # fmt: skip
    sims = _replay("--from-snapshots", str(snapshot.parent), "--dsn", database, "--root", str(root))
    assert (sims["read"], sims["stored"]) == (1, 1)
    day = warm.WarmStore(str(root)).read_day((NOW - dt.timedelta(days=40)).date())
    assert day is not None and day.num_rows == 4
