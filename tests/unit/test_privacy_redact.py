"""Log text loses every UUID and client IP, and keeps what is neither."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.privacy.redact import redact_identifiers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("peer 81.2.69.160:5555 ok", "peer <ip>:5555 ok"),
        ("('10.0.0.7', 5555)", "('<ip>', 5555)"),
        ("from 2001:db8::1 and ::ffff:10.0.0.1", "from <ip> and <ip>"),
        ("[2001:db8::5]:443", "[<ip>]:443"),
        ("player 9B2F3C4D-1111-2222-3333-444455556666 left", "player <uuid> left"),
        # Kept: this machine's listen addresses, times, versions, digests.
        ("nats://127.0.0.1:4222 and [::1]:80, bind 0.0.0.0", None),
        ("at 12:30:45, build 2025.10.1+abc, v1.2.3.4.5", None),
        ("apid deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef", None),
    ],
)
def test_redaction(text: str, expected: str | None) -> None:
    assert redact_identifiers(text) == (text if expected is None else expected)


@given(st.uuids(), st.ip_addresses(), st.text(alphabet="abc xyz,;=", max_size=20))
def test_no_uuid_or_ip_survives(player: uuid.UUID, ip: object, filler: str) -> None:
    address = str(ip)
    text = f"{filler} {player} {filler} {address} {filler}"
    out = redact_identifiers(text)
    assert str(player) not in out
    if address not in {"127.0.0.1", "0.0.0.0", "::1", "::"}:
        assert address not in out.replace("<ip>", "")
