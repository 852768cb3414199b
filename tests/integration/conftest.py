"""Fixtures of the integration tests that talk to the aggregator's stores and stream (the
helpers are in support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database


@pytest.fixture
async def database(postgres_dsn: str) -> AsyncIterator[str]:
    """A fresh database on the shared server; dropped afterwards."""
    async with fresh_database(postgres_dsn, "agg") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def geoip_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small City database: 81.2.69.0/24 is GB/ENG, 2a02:c7f::/32 DE/BE."""
    from gameplay_analytics.local.geoipdb import write_city_database

    city = {"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "ENG"}]}
    berlin = {"country": {"iso_code": "DE"}, "subdivisions": [{"iso_code": "BE"}]}
    path = tmp_path_factory.mktemp("geoip") / "city.mmdb"
    return write_city_database(path, [("81.2.69.0/24", city), ("2a02:c7f::/32", berlin)])
