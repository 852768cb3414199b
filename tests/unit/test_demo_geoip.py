"""The demo's GeoIP database answers the load generator's test addresses with their countries,
and every synthetic player gets an address of its own game region."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from gameplay_analytics.loadgen import geo
from gameplay_analytics.loadgen.players import REGIONS, PlayerProfile
from gameplay_analytics.local.geoipdb import build_demo_geoip, geoip_env
from gameplay_analytics.privacy import Location, open_geoip

pytest.importorskip("mmdb_writer", reason="the demo database needs the local extra")


def test_the_demo_database_maps_every_test_network(tmp_path: Path) -> None:
    database = build_demo_geoip(tmp_path / "sub" / "demo.mmdb")
    reader = open_geoip(database)
    assert reader is not None
    try:
        rng = random.Random(3)
        for network in geo.TEST_NETWORKS:
            for _ in range(5):
                address = geo.address_in(network.region, rng)
                ip = ipaddress.ip_address(address)
                net = next(n for n in geo.TEST_NETWORKS if ip in ipaddress.ip_network(n.cidr))
                assert reader.lookup(address) == Location(net.country, net.subdivision)
            assert ipaddress.ip_network(network.cidr).is_global  # GeoIP skips the others
        assert reader.lookup("8.8.8.8") == Location()  # outside the test networks
    finally:
        reader.close()
    env = geoip_env(database)
    assert env["GAMEPLAY_ANALYTICS_GEOIP_DB"] == str(database)
    assert env["GAMEPLAY_ANALYTICS_TRUSTED_PROXIES"] == "127.0.0.1/32"


def test_players_connect_from_their_region() -> None:
    assert {n.region for n in geo.TEST_NETWORKS} == set(REGIONS)
    for seed in range(50):
        player = PlayerProfile.draw(seed)
        assert player.address is not None
        ip = ipaddress.ip_address(player.address)
        inside = [n for n in geo.networks_of(player.region) if ip in ipaddress.ip_network(n.cidr)]
        assert len(inside) == 1, player
        assert PlayerProfile.draw(seed) == player  # reproducible per seed
    assert geo.networks_of("mars-north") == geo.TEST_NETWORKS
