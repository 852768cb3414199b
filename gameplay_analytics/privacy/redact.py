"""Identifiers that must never reach a log line: UUIDs (players, installations, sessions)
and IP addresses. `redact_identifiers` is the last line for log text, after the callers'
own care; pure, no I/O.

The loopback and unspecified addresses stay: they are this machine's listen addresses,
never a person, and an operator reading `nats://127.0.0.1:4222` needs them.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["IP_MARK", "UUID_MARK", "redact_identifiers"]

UUID_MARK = "<uuid>"
IP_MARK = "<ip>"

_UUID = re.compile(
    r"(?i)(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f-])"
)
# Candidates only; `ipaddress` decides (so "12:30:45" or a version "1.2.3.4.5" is left alone).
_IP_CANDIDATE = re.compile(
    r"(?i)(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"  # IPv4, maybe followed by :port
    r"|(?<![0-9a-f:.])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?![0-9a-f:.])"
)
_KEPT = frozenset({"127.0.0.1", "0.0.0.0", "::1", "::"})


def redact_identifiers(text: str) -> str:
    """`text` with every UUID replaced by `<uuid>` and every IP address (other than the
    loopback and unspecified ones) by `<ip>`."""
    text = _UUID.sub(UUID_MARK, text)
    return _IP_CANDIDATE.sub(_ip_or_same, text)


def _ip_or_same(match: re.Match[str]) -> str:
    token = match.group(0)
    try:
        address = ipaddress.ip_address(token)
    except ValueError:
        return token
    return token if address.compressed in _KEPT else IP_MARK
