"""PROXY protocol headers (runtime/gateway/proxyproto.py): v1 and v2, whole or in pieces, and
never anything but a header, "more please" or BadHeader for any bytes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.runtime.gateway import proxyproto
from gameplay_analytics.runtime.gateway.proxyproto import BadHeader, ProxyHeader, parse

REST = b"GET /ws HTTP/1.1\r\n"


def v2(source: str, port: int, *, command: int = 1, tlv: bytes = b"") -> bytes:
    ip = ipaddress.ip_address(source)
    family = 0x11 if ip.version == 4 else 0x21
    other = ipaddress.ip_address("192.0.2.1" if ip.version == 4 else "2001:db8::1")
    block = ip.packed + other.packed + struct.pack("!HH", port, 443) + tlv
    return (
        proxyproto.V2_SIGNATURE
        + bytes([0x20 | command, family])
        + struct.pack("!H", len(block))
        + block
    )


CASES = [
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 4711 8765\r\n", ("198.51.100.7", 4711)),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 8765\r\n", ("2001:db8::7", 4711)),
    (b"PROXY UNKNOWN\r\n", (None, 0)),
    (v2("198.51.100.7", 4711), ("198.51.100.7", 4711)),
    (v2("2001:db8::7", 4711), ("2001:db8::7", 4711)),
    (v2("198.51.100.7", 4711, tlv=b"\x04\x00\x02ok"), ("198.51.100.7", 4711)),
    (v2("198.51.100.7", 4711, command=0), (None, 0)),  # LOCAL: health check
]


@pytest.mark.parametrize(("header", "source"), CASES)
def test_whole_headers_and_in_pieces(header: bytes, source: tuple[str | None, int]) -> None:
    assert parse(header + REST) == ProxyHeader(*source, len(header))
    for cut in range(len(header)):  # every prefix asks for more
        assert parse(header[:cut]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET /ws HTTP/1.1\r\n",  # no header at all
        b"PROXY TCP4 198.51.100.7\r\n",  # too few fields
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",  # family mismatch
        b"PROXY TCP4 198.51.100.7 10.0.0.1 99999 1\r\n",  # port out of range
        b"PROXY TCP4 " + b"1" * 120,  # no CRLF within 107 bytes
        proxyproto.V2_SIGNATURE + b"\x31\x11\x00\x00",  # v3
        proxyproto.V2_SIGNATURE + b"\x2f\x11\x00\x00",  # unknown command
        proxyproto.V2_SIGNATURE + b"\x21\x11\x00\x04abcd",  # address block too short
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(BadHeader):
        parse(data)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_header_more_please_or_bad_header(data: bytes) -> None:
    try:
        header = parse(data)
    except BadHeader:
        return
    assert header is None or 0 < header.length <= len(data)


@given(st.sampled_from(CASES), st.integers(min_value=0, max_value=60))
def test_the_split_point_never_changes_the_answer(
    case: tuple[bytes, tuple[str | None, int]], cut: int
) -> None:
    header, source = case
    expected = ProxyHeader(*source, len(header))
    stream = header + REST
    first = parse(stream[: min(cut, len(header))])
    assert first is None or first == expected
    assert parse(stream) == expected
