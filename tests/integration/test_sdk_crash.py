"""A game client killed with SIGKILL mid-session loses nothing: after it comes back, its
unacked session_end and the crash of its open session are stored, each exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("sdk_crash_child.py")
SECRET = "sdk-crash-test-secret-of-32-bytes!"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {**os.environ, "GAMEPLAY_ANALYTICS_JWT_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameplay_analytics.cli", "up",
         "--data-dir", str(tmp_path_factory.mktemp("stack"))],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("ready "), line
        yield json.loads(Path(line.split(" ", 1)[1].strip()).read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def run_child(stack: dict[str, str], state: Path, guid: str, player: str, mode: str) -> dict:
    from gameplay_analytics.runtime.gateway.auth import issue_token

    token = issue_token(player, secret=SECRET)
    args = [sys.executable, str(CHILD), stack["ws_url"], token, str(state), guid, player, mode]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line, f"{mode}: the client exited early ({child.wait(10)})"
        if mode != "finish":
            child.kill()  # SIGKILL: no handler, no flush, no goodbye
    finally:
        child.wait(30)
    return dict(json.loads(line))


async def stored_names(dsn: str, guid: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_name FROM analytics_events WHERE client_guid = $1::uuid ORDER BY seq",
            guid,
        )
    finally:
        await conn.close()
    return [r["event_name"] for r in rows]


async def wait_for(dsn: str, guid: str, count: int) -> list[str]:
    for _ in range(120):
        names = await stored_names(dsn, guid)
        if len(names) >= count:
            await asyncio.sleep(1.0)  # would a duplicate follow?
            return await stored_names(dsn, guid)
        await asyncio.sleep(0.25)
    return await stored_names(dsn, guid)


def test_killed_client_sends_its_session_end_and_crash_once(
    stack: dict[str, str], tmp_path: Path
) -> None:
    guid, player = str(uuid.uuid4()), str(uuid.uuid4())
    first = run_child(stack, tmp_path, guid, player, "end-offline")
    assert first == {"recovered": 0, "crash": False}
    second = run_child(stack, tmp_path, guid, player, "start-open")
    assert second == {"recovered": 1, "crash": False}  # session_end, from the killed run
    third = run_child(stack, tmp_path, guid, player, "finish")
    assert third["crash"] is True  # the second run was killed with its session open
    names = asyncio.run(wait_for(stack["postgres_dsn"], guid, 7))
    assert sorted(names) == sorted(
        ["session_start", "engage_enemy", "engage_enemy", "engage_enemy", "session_end",
         "session_start", "session_crash"]
    )  # fmt: skip
