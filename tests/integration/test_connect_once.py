"""`jetstream.connect_once`, the one-shot tools' NATS connection (replay, privacy, `up`'s
provisioning): it tries each server of a list, and gives up with `ConnectionError` (what the
commands report as an unreachable store) instead of retrying forever, which nats.py does for
a server refused at the first connect with `max_reconnect_attempts=0`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gameplay_analytics.local.services import NatsServer, free_port
from gameplay_analytics.runtime import jetstream

pytestmark = pytest.mark.integration

_HANG_GUARD_S = 60  # not a timing assertion: a regression would otherwise hang the suite


def _closed() -> str:
    return f"nats://127.0.0.1:{free_port()}"


async def test_no_server_answering_is_a_connection_error() -> None:
    async with asyncio.timeout(_HANG_GUARD_S):
        with pytest.raises(ConnectionError, match="NoServersError"):
            await jetstream.connect_once(f"{_closed()},{_closed()}", timeout_s=2)


async def test_a_dead_node_of_a_list_is_passed_over(nats_url: str) -> None:
    async with asyncio.timeout(_HANG_GUARD_S):
        nc = await jetstream.connect_once(f"{_closed()},{nats_url}", name="probe")
    try:
        assert nc.is_connected
        await nc.flush()
    finally:
        await nc.close()


async def test_a_refused_login_is_a_connection_error(tmp_path: Path) -> None:
    auth = 'authorization { users = [ {user: "tool", password: "right"} ] }'
    server = NatsServer(tmp_path / "nats", auth_config=auth)
    server.start()
    try:
        async with asyncio.timeout(_HANG_GUARD_S):
            with pytest.raises(ConnectionError):
                await jetstream.connect_once(_login(server.url, "wrong"))
            nc = await jetstream.connect_once(_login(server.url, "right"))
            await nc.close()
    finally:
        server.stop()


def _login(url: str, password: str) -> jetstream.NatsSettings:
    return jetstream.NatsSettings(nats_url=url, nats_user="tool", nats_password=password)


def test_the_quality_check_with_its_nats_down_is_refused(tmp_path: Path) -> None:
    """`quality sessions` (a CronJob that forbids concurrent runs) used the services'
    reconnect-forever connect: with NATS down it never ended, and no later run started."""
    result = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "quality", "sessions",
         "--nats-url", _closed(), "--dsn", f"postgresql://x@127.0.0.1:{free_port()}/x"],
        capture_output=True, text=True, timeout=_HANG_GUARD_S, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "NATS at nats://127.0.0.1:" in result.stderr
