"""NATS credentials end to end: a gateway and an aggregator started as the operator renders
them (`GAMEPLAY_ANALYTICS_NATS_CREDS`, a mounted .creds file) reach a server that refuses
anonymous clients; user and password work the same way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameplay_analytics.local.services import NatsServer, free_port
from gameplay_analytics.runtime import jetstream
from tests.cluster.natsauth import make_credentials
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JetStream server in operator mode (JWT auth) and a user's .creds file for it."""
    made = make_credentials()
    root = tmp_path_factory.mktemp("secured-nats")
    server = NatsServer(root / "nats", auth_config=made.server_config)
    server.start()
    creds = root / "user.creds"
    creds.write_text(made.creds)
    yield server.url, creds
    server.stop()


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(log.read_text())


async def test_processes_authenticate_with_the_creds_file(
    secured_nats: tuple[str, Path], postgres_dsn: str, tmp_path: Path
) -> None:
    url, creds = secured_nats
    settings = jetstream.NatsSettings(nats_url=url, nats_creds=creds)
    await jetstream.provision(settings)  # what the operator does, with the same credentials
    with pytest.raises(Exception):  # noqa: B017 - anonymous is refused: auth is real
        await jetstream.provision(jetstream.NatsSettings(nats_url=url))
    async with fresh_database(postgres_dsn, "creds") as dsn:
        base = {k: v for k, v in os.environ.items() if not k.startswith("GAMEPLAY_ANALYTICS_")}
        common = {
            **base,
            "GAMEPLAY_ANALYTICS_NATS_URL": url,
            "GAMEPLAY_ANALYTICS_NATS_CREDS": str(creds),
        }
        roles = {
            "gateway": {"GAMEPLAY_ANALYTICS_JWT_SECRET": "s", "GAMEPLAY_ANALYTICS_WS_PORT": "0"},
            "aggregator": {"GAMEPLAY_ANALYTICS_POSTGRES_DSN": dsn},
        }
        procs = []
        try:
            for role, env in roles.items():
                port = free_port()
                log = tmp_path / f"{role}.log"
                argv = [sys.executable, "-m", "gameplay_analytics.cli", role]
                env = {**common, **env, "GAMEPLAY_ANALYTICS_METRICS_PORT": str(port)}
                proc = await asyncio.to_thread(spawn, argv, env, log)
                procs.append(proc)
                await asyncio.to_thread(wait_ready, port, proc, log)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await asyncio.to_thread(proc.wait, 30)


async def test_user_and_password_work_and_anonymous_is_refused(tmp_path: Path) -> None:
    server = NatsServer(
        tmp_path / "nats", auth_config='authorization { user: analytics, password: "s3cret" }'
    )
    server.start()
    try:
        good = jetstream.NatsSettings(
            nats_url=server.url, nats_user="analytics", nats_password="s3cret"
        )
        await jetstream.provision(good)
        nc = await jetstream.connect(good, name="test")
        try:
            await jetstream.verify(nc.jetstream(), good.names(), url=server.url)
        finally:
            await nc.close()
        with pytest.raises(Exception):  # noqa: B017
            await jetstream.provision(jetstream.NatsSettings(nats_url=server.url))
    finally:
        server.stop()


def test_half_a_login_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="both nats_user and nats_password"):
        jetstream.NatsSettings(nats_user="analytics")
