"""The protocol's error codes (PROTOCOL.md §1) and the exception that carries one.

Every refusal the gateway sends is one of these codes; nothing else reaches a client.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "ProtocolError", "RejectCode"]


class ErrorCode(enum.StrEnum):
    """Frame-level refusals, sent as `{"type": "error", "code": …}`."""

    UNAUTHORIZED = "unauthorized"
    ANALYTICS_VERSION = "analytics_version"
    BACKPRESSURE = "backpressure"
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"


class RejectCode(enum.StrEnum):
    """Event-level refusals, listed in an `ack`'s `rejected` and sent to `analytics.dlq`."""

    INVALID_EVENT = "invalid_event"
    # The aggregator's time bounds: never stored, never silently dropped (PROTOCOL.md §3).
    CLOCK_SKEW = "clock_skew"  # stamped too far ahead of the server clock
    TOO_OLD = "too_old"  # older than the warm retention: the retention would delete it


class ProtocolError(Exception):
    """A frame the gateway refuses; `code` and `detail` go to the client verbatim."""

    def __init__(self, code: ErrorCode, detail: str, *, frame_id: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.frame_id = frame_id
