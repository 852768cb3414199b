"""The client's address behind trusted proxies (`X-Forwarded-For`, `Forwarded`).

Pure: the socket peer, the request headers and the trusted CIDRs in, the address out. Only a
peer inside a trusted CIDR may name someone else: the forwarded chain is read from the right
(the hop nearest this gateway), skipping trusted proxies, and the first address that is not
one is the client. Anyone else's headers are ignored, so a player cannot pick the address
their events geolocate to. `Forwarded` (RFC 7239) wins over `X-Forwarded-For` when present.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "client_address", "is_trusted", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, fd00::/8, 192.0.2.7` → networks; ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {item!r}") from None
    return tuple(networks)


def client_address(
    peer: str | None,
    *,
    forwarded: Sequence[str] = (),
    x_forwarded_for: Sequence[str] = (),
    trusted: Sequence[Network] = (),
) -> str | None:
    """The client's address: `peer` unless it is a trusted proxy that forwarded one.

    `forwarded` / `x_forwarded_for` are every value of those headers, in order.
    """
    if peer is None or not is_trusted(peer, trusted):
        return peer
    chain = _forwarded_for(forwarded) if forwarded else _x_forwarded_for(x_forwarded_for)
    client = peer
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            break  # garbage (or `unknown`): keep the last hop a trusted proxy vouched for
        client = address
        if not is_trusted(address, trusted):
            break
    return client


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    """Whether `address` (IPv4-mapped IPv6 counts as its IPv4) lies in a trusted network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)


def _address(hop: str) -> str | None:
    """An IP from a hop: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, `2001:db8::1`."""
    hop = hop.strip().strip('"')
    if hop.startswith("["):
        hop = hop[1:].split("]", 1)[0]
    elif hop.count(":") == 1:
        hop = hop.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def _x_forwarded_for(values: Iterable[str]) -> list[str]:
    return [hop for value in values for hop in value.split(",")]


def _forwarded_for(values: Iterable[str]) -> list[str]:
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, param = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(param)
    return hops
