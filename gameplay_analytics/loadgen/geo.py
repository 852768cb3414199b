"""Where synthetic players appear to connect from: a few public test networks per game region,
and the country each stands for in the demo's GeoIP database (`local/geoipdb.py`).

GeoIP ignores non-global addresses, so the documentation ranges (192.0.2.0/24, 2001:db8::/32)
would never get a country; these are the networks MaxMind uses in its own test databases
(MaxMind-DB `source-data/*-Test.json`), never a real player's address in a demo. The mapping to
countries is the demo's own: only the demo's database answers with it. A player sends its
address as `X-Forwarded-For`; a gateway that trusts the load generator's peer (the demo's
`TRUSTED_PROXIES=127.0.0.1/32`) takes it as the client address, any other ignores it.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

__all__ = ["TEST_NETWORKS", "TestNetwork", "address_in", "networks_of"]


@dataclass(frozen=True)
class TestNetwork:
    """A /24 of synthetic players of one game region, and where the demo database puts it."""

    __test__ = False  # not a pytest class

    cidr: str
    region: str  # the game region of the players' tokens (loadgen.players.REGIONS)
    country: str  # ISO 3166-1
    subdivision: str | None = None  # ISO 3166-2 code without the country


TEST_NETWORKS: tuple[TestNetwork, ...] = (
    TestNetwork("81.2.69.0/24", "eu-west", "GB", "ENG"),
    TestNetwork("89.160.20.0/24", "eu-west", "SE", "E"),
    TestNetwork("216.160.83.0/24", "us-east", "US", "WA"),
    TestNetwork("202.196.224.0/24", "ap-southeast", "PH"),
    TestNetwork("175.16.199.0/24", "ap-southeast", "CN", "22"),
)


def networks_of(region: str) -> tuple[TestNetwork, ...]:
    """The test networks of a game region; every network for a region with none of its own."""
    return tuple(n for n in TEST_NETWORKS if n.region == region) or TEST_NETWORKS


def address_in(region: str, rng: random.Random) -> str:
    """A host address (not .0 or .255) in one of the region's test networks."""
    network = ipaddress.ip_network(rng.choice(networks_of(region)).cidr)
    return str(network[rng.randint(1, network.num_addresses - 2)])
