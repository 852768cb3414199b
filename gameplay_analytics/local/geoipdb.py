"""The demo's GeoIP database: a small MaxMind-format City file built on the spot from the load
generator's test networks (`loadgen.geo`), so a local run fills `country` and `geo_region` the
way a GeoLite2 file does in production (docs/operations.md). Needs the `local` extra
(mmdb-writer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gameplay_analytics.contract.natsnames import ENV_PREFIX
from gameplay_analytics.loadgen.geo import TEST_NETWORKS

__all__ = ["LOOPBACK_PROXY", "build_demo_geoip", "geoip_env", "write_city_database"]

LOOPBACK_PROXY = "127.0.0.1/32"
"""The load generator's peer address on the local stack: trusted to name the client."""


def build_demo_geoip(path: Path) -> Path:
    """Write the database to `path` (parents created); returns `path`."""
    records = []
    for network in TEST_NETWORKS:
        record: dict[str, Any] = {"country": {"iso_code": network.country}}
        if network.subdivision:
            record["subdivisions"] = [{"iso_code": network.subdivision}]
        records.append((network.cidr, record))
    description = "gameplay-analytics demo: the load generator's test networks"
    return write_city_database(path, records, description=description)


def write_city_database(
    path: Path, records: Iterable[tuple[str, Mapping[str, Any]]], *, description: str = ""
) -> Path:
    """A MaxMind-format City database at `path` (parents created) with one record per CIDR,
    IPv4 and IPv6; returns `path`."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet  # type: ignore[import-untyped]

    writer = MMDBWriter(
        ip_version=6, database_type="GeoLite2-City", description=description,
        ipv4_compatible=True,
    )  # fmt: skip
    for cidr, record in records:
        writer.insert_network(IPSet([cidr]), dict(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def geoip_env(database: Path) -> dict[str, str]:
    """The settings a local stack needs to geolocate its synthetic players: the database for
    the process that does GeoIP, and the loopback as the proxy whose `X-Forwarded-For` the
    gateway believes. The local stack hands one environment to gateway and aggregator."""
    return {
        f"{ENV_PREFIX}GEOIP_DB": str(database),
        f"{ENV_PREFIX}TRUSTED_PROXIES": LOOPBACK_PROXY,
    }
