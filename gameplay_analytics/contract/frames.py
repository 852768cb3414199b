"""The WebSocket frames of PROTOCOL.md §1, as msgspec structs, and their fast parse.

Client frames decode in one C pass; an `analytics` frame keeps its events as raw JSON so the
validator of the frame's schema version decodes them (see `validator.py`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from gameplay_analytics.contract import limits
from gameplay_analytics.contract.errors import ErrorCode, ProtocolError

__all__ = [
    "Ack",
    "AnalyticsFrame",
    "ClientFrame",
    "Error",
    "Hello",
    "Input",
    "Rejection",
    "SamplingFrame",
    "Telemetry",
    "Welcome",
    "decode_detail",
    "encode",
    "parse_client_frame",
]

_Short = Annotated[str, msgspec.Meta(max_length=128)]


class Hello(msgspec.Struct, tag_field="type", tag="hello"):
    """First frame of a session: who the player is (JWT), which installation, which schema."""

    token: Annotated[str, msgspec.Meta(max_length=8192)]
    client_guid: uuid.UUID
    schema: _Short
    build: _Short = ""
    platform: _Short = ""
    consent: dict[str, Any] = {}
    schema_hash: _Short | None = None
    """The client's build of `schema` (`contract/fingerprint.py`); optional, compared only."""


class AnalyticsFrame(msgspec.Struct, tag_field="type", tag="analytics"):
    """A batch of events; `events` stays raw until the version's validator decodes it."""

    id: int
    schema: _Short
    events: msgspec.Raw


class Telemetry(msgspec.Struct, tag_field="type", tag="telemetry"):
    """Piggybacked client measures (≤ 1 Hz), recorded as heartbeat samples."""

    rtt_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    snapshot_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Input(msgspec.Struct, tag_field="type", tag="input"):
    """Game input sharing the socket; the analytics gateway ignores it."""


ClientFrame = Hello | AnalyticsFrame | Telemetry | Input

_client_decoder = msgspec.json.Decoder(ClientFrame)


class Welcome(msgspec.Struct, tag_field="type", tag="welcome"):
    session_id: str
    sampling: dict[str, Any]
    sampling_version: str
    max_events_per_envelope: int = limits.MAX_EVENTS_PER_ENVELOPE
    max_rate_hz: int = limits.MAX_RATE_HZ
    multiplier: float = 1.0


class Rejection(msgspec.Struct, omit_defaults=True):
    """One refused event of an envelope; `seq` is None when the event had no readable seq."""

    seq: int | None
    code: str
    detail: str


class Ack(msgspec.Struct, tag_field="type", tag="ack", omit_defaults=True):
    """The envelope is stored in JetStream. `dropped` counts events the server-side guard
    (sampling, consent) discarded: accepted, so the client forgets them, but not stored."""

    id: int
    accepted: int
    rejected: list[Rejection] = []
    dropped: int = 0


class Error(msgspec.Struct, tag_field="type", tag="error", omit_defaults=True):
    code: str
    detail: str
    id: int | None = None
    retry_after_ms: int | None = None


class SamplingFrame(msgspec.Struct, tag_field="type", tag="sampling"):
    sampling: dict[str, Any]
    sampling_version: str
    multiplier: float = 1.0


_encoder = msgspec.json.Encoder()


def encode(frame: msgspec.Struct) -> bytes:
    """One server frame as the JSON text the socket sends."""
    return _encoder.encode(frame)


def decode_detail(err: msgspec.MsgspecError) -> str:
    """msgspec's message as `path: what`, the shape of the protocol's `detail` strings."""
    message = str(err)
    head, sep, path = message.rpartition(" - at `$")
    if not sep:
        return message
    path = path.rstrip("`").lstrip(".")
    return f"{path}: {head}" if path else head


def parse_client_frame(data: bytes | str) -> ClientFrame:
    """Decode one client frame; anything malformed raises `ProtocolError(bad_request)`.

    Unknown fields are ignored (a newer client may send more); an unknown `type`, a missing or
    mistyped field, or bytes that are not JSON are refused with a detail naming the field.
    """
    try:
        return _client_decoder.decode(data)
    except msgspec.ValidationError as err:
        raise ProtocolError(ErrorCode.BAD_REQUEST, decode_detail(err)) from None
    except msgspec.DecodeError as err:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"not a JSON frame: {err}") from None
    except RecursionError:  # msgspec's depth guard, even while skipping `events` as Raw
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame: nested too deeply") from None
