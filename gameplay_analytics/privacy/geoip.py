"""Country and region from a client IP, through a MaxMind database, before the IP is dropped.

Lookups never raise: a bad, private or unknown address only means an unknown location.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import maxminddb

__all__ = ["GeoIP", "Location", "RecordReader", "open_geoip"]


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """ISO 3166-1 country (`DE`) and the first ISO 3166-2 subdivision code (`BY`), if known."""

    country: str | None = None
    region: str | None = None


UNKNOWN = Location()


class RecordReader(Protocol):
    """What GeoIP needs of a `maxminddb.Reader`: one record per address, or None."""

    def get(self, ip_address: str, /) -> object: ...


class GeoIP:
    """Looks up addresses in a City or Country database (GeoLite2 or GeoIP2 layout)."""

    __slots__ = ("_reader",)

    def __init__(self, reader: RecordReader) -> None:
        self._reader = reader

    def __repr__(self) -> str:
        return f"GeoIP({type(self._reader).__name__})"

    def lookup(self, ip: object) -> Location:
        """The location of a public address; UNKNOWN for anything else, never an exception."""
        address = _public_address(ip)
        if address is None:
            return UNKNOWN
        try:
            record = self._reader.get(address)
        except Exception:
            # Best effort by design: an IPv6 query against an IPv4-only file, a corrupt node
            # or a closed reader must cost the event its location, never the batch.
            return UNKNOWN
        return _location(record)

    def close(self) -> None:
        close = getattr(self._reader, "close", None)
        if callable(close):
            close()


def open_geoip(path: Path | str | None) -> GeoIP | None:
    """Open a `.mmdb` file; None when no path is configured or the file does not exist.

    A file that exists but is not a MaxMind database raises ValueError saying so, because
    that is a deployment mistake worth failing on, unlike an optional database left out.
    """
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    try:
        reader = maxminddb.open_database(str(path))
    except (maxminddb.InvalidDatabaseError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable MaxMind database: {exc}") from None
    return GeoIP(reader)


def _public_address(ip: object) -> str | None:
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ip
    elif isinstance(ip, str):
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
    else:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is how dual-stack sockets report IPv4 clients.
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


def _location(record: object) -> Location:
    if not isinstance(record, Mapping):
        return UNKNOWN
    subdivisions = record.get("subdivisions")
    first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    return Location(country=_iso_code(record.get("country")), region=_iso_code(first))


def _iso_code(entry: object) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    code = entry.get("iso_code")
    return code if isinstance(code, str) and code else None
