"""The protocol's codes (PROTOCOL.md §1): error and rejection codes, close codes, drop reasons.

Every refusal the gateway sends is one of these codes; nothing else reaches a client. The SDK
reads the same enums, so gateway and client cannot drift apart on a spelling.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "DropReason", "ErrorCode", "ProtocolError", "RejectCode"]


class ErrorCode(enum.StrEnum):
    """Frame-level refusals, sent as `{"type": "error", "code": …}`."""

    UNAUTHORIZED = "unauthorized"
    ANALYTICS_VERSION = "analytics_version"
    BACKPRESSURE = "backpressure"
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"

    @property
    def retryable(self) -> bool:
        """The client keeps the envelope and resends it after `retry_after_ms`."""
        return self in (ErrorCode.BACKPRESSURE, ErrorCode.RATE_LIMITED)


class RejectCode(enum.StrEnum):
    """Event-level refusals, listed in an `ack`'s `rejected` and sent to `analytics.dlq`."""

    INVALID_EVENT = "invalid_event"
    # The aggregator's time bounds: never stored, never silently dropped (PROTOCOL.md §3).
    CLOCK_SKEW = "clock_skew"  # stamped too far ahead of the server clock
    TOO_OLD = "too_old"  # older than the warm retention: the retention would delete it


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses (1009, frame too big, comes from the library)."""

    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    UNAUTHORIZED = 4401
    HELLO_TIMEOUT = 4408


class DropReason(enum.StrEnum):
    """Why valid events were not stored: label values of `analytics_drop_total{reason}` (a
    closed set, so no client-made labels)."""

    SAMPLING = "sampling"
    CONSENT = "consent"
    OPT_OUT = "opt_out"
    BACKPRESSURE = "backpressure"
    RATE_LIMITED = "rate_limited"
    PUBLISH_FAILED = "publish_failed"


class ProtocolError(Exception):
    """A frame the gateway refuses; `code` and `detail` go to the client verbatim."""

    def __init__(self, code: ErrorCode, detail: str, *, frame_id: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.frame_id = frame_id
