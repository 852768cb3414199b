"""The client's address behind trusted proxies: only a trusted peer may name another."""

from __future__ import annotations

import pytest

from gameplay_analytics.runtime.gateway import GatewaySettings
from gameplay_analytics.runtime.gateway.clientaddr import client_address, parse_networks

LB = parse_networks("10.0.0.0/8, fd00::/8")


def test_an_untrusted_peer_cannot_name_another_address() -> None:
    assert client_address("203.0.113.9", x_forwarded_for=["1.1.1.1"], trusted=LB) == "203.0.113.9"
    assert client_address("203.0.113.9", forwarded=["for=1.1.1.1"], trusted=LB) == "203.0.113.9"
    assert client_address("10.1.2.3", x_forwarded_for=["1.1.1.1"]) == "10.1.2.3"  # none trusted
    assert client_address(None, x_forwarded_for=["1.1.1.1"], trusted=LB) is None


def test_a_trusted_proxy_names_the_client_read_from_the_right() -> None:
    assert client_address("10.0.0.5", x_forwarded_for=["198.51.100.7"], trusted=LB) == (
        "198.51.100.7"
    )
    # The player prepends a forged hop; the load balancer appends the real one.
    spoofed = ["6.6.6.6, 198.51.100.7", "10.0.0.9"]
    assert client_address("10.0.0.5", x_forwarded_for=spoofed, trusted=LB) == "198.51.100.7"
    assert client_address("10.0.0.5", trusted=LB) == "10.0.0.5"  # no header: the proxy itself
    assert client_address("::ffff:10.0.0.5", x_forwarded_for=["198.51.100.7"], trusted=LB) == (
        "198.51.100.7"
    )
    # Every hop trusted: the leftmost.
    assert client_address("10.0.0.5", x_forwarded_for=["10.9.9.9"], trusted=LB) == "10.9.9.9"


def test_forwarded_wins_and_garbage_stops_at_the_last_vouched_hop() -> None:
    forwarded = ['for="[2001:db8::7]:4711";proto=https, for=10.0.0.9']
    assert (
        client_address("fd00::1", forwarded=forwarded, x_forwarded_for=["6.6.6.6"], trusted=LB)
        == "2001:db8::7"
    )
    assert client_address("10.0.0.5", forwarded=["for=198.51.100.7:1234"], trusted=LB) == (
        "198.51.100.7"
    )
    assert client_address("10.0.0.5", x_forwarded_for=["1.2.3.4, <script>"], trusted=LB) == (
        "10.0.0.5"
    )
    assert client_address("10.0.0.5", forwarded=["for=unknown, for=10.0.0.7"], trusted=LB) == (
        "10.0.0.7"
    )


def test_the_setting_takes_cidrs_and_refuses_anything_else() -> None:
    settings = GatewaySettings(
        nats_url="nats://n", jwt_secret="s", trusted_proxies="10.0.0.0/8,::1"
    )
    assert [str(n) for n in settings.trusted_networks()] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        GatewaySettings(nats_url="nats://n", jwt_secret="s", trusted_proxies="10.0.0.0/8,lb")
