"""Shared fixtures: real nats-server and PostgreSQL from their wheels, on free ports; a moto S3
server per module."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.js import JetStreamContext

# No test may reach the cloud's instance metadata service: without credentials in the
# environment the AWS SDK (pyarrow's S3, botocore) asks 169.254.169.254 for them, and on a
# machine where that address accepts a connection and never answers, a test hangs until its
# timeout (seen: the warm-store probe test and an integration test, idle in select).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

ADMIN_PASSWORD = "session-admin"  # the shared server's one (unrestricted) test user
STUCK_AFTER_S = 240  # a test still running then is stuck: pytest-timeout ends it at 300 s


@pytest.fixture(autouse=True)
def _stacks_of_a_stuck_test() -> Iterator[None]:
    """Before pytest-timeout ends a stuck test, print what every asyncio task awaits.

    pytest-timeout's own dump shows only threads, and a stuck async test is a thread idle in
    `select`: the coroutine that waits (and for what) is what tells the cause. The dump runs
    on the loop's own thread (`call_soon_threadsafe`: an idle loop wakes for it), into the
    test's captured stderr."""
    import threading

    timer = threading.Timer(STUCK_AFTER_S, _dump_running_loops)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


def _dump_running_loops() -> None:
    import asyncio
    import gc
    import sys

    def dump(loop: asyncio.AbstractEventLoop) -> None:
        tasks = asyncio.all_tasks(loop)
        print(f"--- {len(tasks)} asyncio tasks after {STUCK_AFTER_S} s ---", file=sys.stderr)
        for task in tasks:
            task.print_stack(file=sys.stderr)

    for loop in [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]:
        if loop.is_running():
            loop.call_soon_threadsafe(dump, loop)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A JetStream-enabled nats-server shared by the session; tests use unique names. The
    default stream and bucket are created, as `up` does (processes only verify them). Auth
    is on, as in `up` and a cluster: anonymous clients are refused, tests log in as `admin`
    (`nats_url`); least privilege itself is tests/integration/test_nats_permissions.py's."""
    import asyncio

    from gameplay_analytics.contract.natsnames import PipelineNames
    from gameplay_analytics.contract.natsperms import authorization_block
    from gameplay_analytics.local.services import NatsServer
    from gameplay_analytics.runtime import jetstream

    auth = authorization_block(PipelineNames(), {}, extra_users={"admin": ADMIN_PASSWORD})
    server = NatsServer(tmp_path_factory.mktemp("nats"), auth_config=auth)
    server.start()
    asyncio.run(jetstream.provision(jetstream.NatsSettings(nats_url=admin_url(server.url))))
    yield server
    server.stop()


def admin_url(url: str) -> str:
    """`url` logged in as the shared server's admin."""
    from gameplay_analytics.local.natsauth import login_url

    return login_url(url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A PostgreSQL server shared by the session (database `analytics`)."""
    from gameplay_analytics.local.services import PostgresServer

    server = PostgresServer(Path(tmp_path_factory.mktemp("pg")) / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: object) -> str:
    return admin_url(str(nats_server.url))  # type: ignore[attr-defined]


@pytest.fixture
def postgres_dsn(postgres_server: object) -> str:
    return str(postgres_server.dsn)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def fresh_database(dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the shared server, dropped (connections forced out) afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(dsn, timeout=30)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# -- S3 (moto in server mode): the warm store and privacy tests, the cluster in a box --------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from gameplay_analytics.local.services import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context on the session's nats-server, the default stream ensured."""
    import nats

    from gameplay_analytics.runtime import jetstream

    nc = await nats.connect(nats_url)
    ctx = nc.jetstream()
    await jetstream.ensure_stream(ctx, jetstream.StreamSettings.model_validate({}))
    yield ctx
    await nc.close()
