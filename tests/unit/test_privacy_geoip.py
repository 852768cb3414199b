"""GeoIP: country and region from a real .mmdb built here, never an exception on bad input."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameplay_analytics.local.geoipdb import write_city_database
from gameplay_analytics.privacy import GeoIP, Location, open_geoip

# Public addresses (documentation ranges are not global, so they would count as private).
GB_CITY = {
    "country": {"iso_code": "GB"},
    "subdivisions": [{"iso_code": "ENG"}, {"iso_code": "LND"}],
}
DE_COUNTRY_ONLY = {"country": {"iso_code": "DE"}}
JP_V6 = {"country": {"iso_code": "JP"}, "subdivisions": [{"iso_code": "13"}]}
ODD = {"country": {"iso_code": 7}, "subdivisions": "nope"}


@pytest.fixture(scope="module")
def mmdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [
        ("81.2.69.0/24", GB_CITY),
        ("89.160.20.0/24", DE_COUNTRY_ONLY),
        ("2400:4000::/22", JP_V6),
        ("175.16.199.0/24", ODD),
    ]
    return write_city_database(tmp_path_factory.mktemp("geoip") / "test-city.mmdb", records)


@pytest.fixture
def geoip(mmdb_path: Path) -> Iterator[GeoIP]:
    opened = open_geoip(mmdb_path)
    assert opened is not None
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", Location("GB", "ENG")),
        (" 81.2.69.1 ", Location("GB", "ENG")),
        (ipaddress.ip_address("81.2.69.200"), Location("GB", "ENG")),
        ("::ffff:81.2.69.142", Location("GB", "ENG")),  # dual-stack sockets report IPv4 so
        ("89.160.20.112", Location("DE", None)),
        ("2400:4001::1", Location("JP", "13")),
        ("2400:4000:0:0:0:0:0:abcd", Location("JP", "13")),
        ("175.16.199.5", Location(None, None)),  # malformed record fields
        ("8.8.8.8", Location(None, None)),  # not in the database
        ("2a00:1450::1", Location(None, None)),
        ("10.1.2.3", Location(None, None)),
        ("192.168.0.7", Location(None, None)),
        ("127.0.0.1", Location(None, None)),
        ("::1", Location(None, None)),
        ("fd00::1", Location(None, None)),
        ("fe80::1", Location(None, None)),
        ("100.64.0.1", Location(None, None)),  # carrier-grade NAT
        ("not an ip", Location(None, None)),
        ("", Location(None, None)),
        ("81.2.69.300", Location(None, None)),
        (None, Location(None, None)),
        (12345, Location(None, None)),
    ],
)
def test_lookups(geoip: GeoIP, ip: object, expected: Location) -> None:
    assert geoip.lookup(ip) == expected


def test_a_reader_that_fails_costs_only_the_location() -> None:
    class Broken:
        def get(self, ip_address: str, /) -> object:
            raise ValueError("You attempted to look up an IPv6 address in an IPv4-only database")

    assert GeoIP(Broken()).lookup("2400:4001::1") == Location(None, None)


def test_a_closed_database_answers_unknown(mmdb_path: Path) -> None:
    opened = open_geoip(mmdb_path)
    assert opened is not None
    opened.close()
    assert opened.lookup("81.2.69.142") == Location(None, None)


def test_country_databases_without_subdivisions() -> None:
    class CountryReader:
        def get(self, ip_address: str, /) -> object:
            return {"country": {"iso_code": "FR"}, "continent": {"code": "EU"}}

    assert GeoIP(CountryReader()).lookup("81.2.69.142") == Location("FR", None)


def test_open_geoip_without_a_file_is_none(tmp_path: Path) -> None:
    assert open_geoip(None) is None
    assert open_geoip(tmp_path / "absent.mmdb") is None


def test_open_geoip_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"this is not a maxmind database")
    with pytest.raises(ValueError, match="is not a readable MaxMind database"):
        open_geoip(bogus)
