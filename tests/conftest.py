"""Session fixtures: real nats-server and PostgreSQL from their wheels, on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A JetStream-enabled nats-server shared by the session; tests use unique names."""
    from gameplay_analytics.local.services import NatsServer

    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


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
    return str(nats_server.url)  # type: ignore[attr-defined]


@pytest.fixture
def postgres_dsn(postgres_server: object) -> str:
    return str(postgres_server.dsn)  # type: ignore[attr-defined]
