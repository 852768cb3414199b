"""The PROXY protocol header (HAProxy's spec, v1 text and v2 binary) a load balancer puts in
front of a TCP stream to name the client. Pure: bytes in, the client's address out.

`parse` answers `None` while the header is incomplete, a `ProxyHeader` once it is whole (with
its length, so the caller hands the rest of the stream on), and raises `BadHeader` for
anything that is not one; the caller then drops the connection. A `LOCAL` (v2) or `UNKNOWN`
(v1) header, the balancer's own health check, names no client: `source` is None and the
socket peer stands. TLVs (v2) are skipped.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct

__all__ = ["MAX_HEADER_BYTES", "BadHeader", "ProxyHeader", "parse"]

V1_PREFIX = b"PROXY "
V1_MAX_BYTES = 107  # the spec's bound, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED_BYTES = 16
V2_MAX_BYTES = V2_FIXED_BYTES + 0xFFFF
MAX_HEADER_BYTES = V2_MAX_BYTES
_V2_ADDRESS_BYTES = {0x1: 12, 0x2: 36}  # family -> bytes of (src, dst, sport, dport)


class BadHeader(ValueError):
    """The stream does not start with a PROXY protocol header (or a broken one)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeader:
    source: str | None  # the client's address; None: LOCAL / UNKNOWN (keep the peer)
    source_port: int
    length: int  # bytes of the stream the header took


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`, None if more bytes are needed, BadHeader if none."""
    if data[: len(V2_SIGNATURE)] == V2_SIGNATURE[: len(data)] and len(data) < len(V2_SIGNATURE):
        return None  # could still become the v2 signature
    if data.startswith(V2_SIGNATURE):
        return _v2(data)
    if data[: len(V1_PREFIX)] == V1_PREFIX[: len(data)] and len(data) < len(V1_PREFIX):
        return None
    if data.startswith(V1_PREFIX):
        return _v1(data)
    raise BadHeader("no PROXY protocol header")


def _v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX_BYTES)
    if end < 0:
        if len(data) >= V1_MAX_BYTES:
            raise BadHeader("PROXY v1 line longer than 107 bytes")
        return None
    length = end + 2
    parts = data[:end].decode("ascii", errors="replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None, 0, length)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise BadHeader("PROXY v1: expected TCP4|TCP6 src dst sport dport")
    version = 4 if parts[1] == "TCP4" else 6
    try:
        source = ipaddress.ip_address(parts[2])
        ipaddress.ip_address(parts[3])
        port = int(parts[4])
    except ValueError:
        raise BadHeader("PROXY v1: bad address or port") from None
    if source.version != version or not 0 <= port <= 65535:
        raise BadHeader("PROXY v1: address family or port out of range")
    return ProxyHeader(str(source), port, length)


def _v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_FIXED_BYTES:
        return None
    version_command, family_protocol, size = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise BadHeader("PROXY v2: unknown version")
    length = V2_FIXED_BYTES + size
    if len(data) < length:
        return None
    command = version_command & 0xF
    if command == 0x0:  # LOCAL: the balancer itself (health checks)
        return ProxyHeader(None, 0, length)
    if command != 0x1:
        raise BadHeader("PROXY v2: unknown command")
    family = family_protocol >> 4
    needed = _V2_ADDRESS_BYTES.get(family)
    if needed is None:  # AF_UNSPEC / AF_UNIX: no IP address to take
        return ProxyHeader(None, 0, length)
    if size < needed:
        raise BadHeader("PROXY v2: address block too short")
    body = data[V2_FIXED_BYTES:length]
    width = 4 if family == 0x1 else 16
    source = ipaddress.ip_address(body[:width])
    (port,) = struct.unpack("!H", body[2 * width : 2 * width + 2])
    return ProxyHeader(str(source), port, length)
