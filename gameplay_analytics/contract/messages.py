"""The JetStream message formats: gateway → aggregator on `analytics.events`, and DLQ entries.

Gateway and aggregator never import each other; this module is where they meet. An
`analytics.events` message is one `EventBatch` (the events of one client envelope plus what the
gateway observed about the session) or a bundle of several (a JSON array of them): the gateway
group-commits the envelopes of many sessions into one durable write (`encode_bundle`), the
aggregator reads every message through `split_events`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from gameplay_analytics.contract import natsnames

__all__ = [
    "DLQ_SUBJECT",
    "EVENTS_SUBJECT",
    "KV_BUCKET",
    "KV_SAMPLING_KEY",
    "KV_SCHEMAS_KEY",
    "LEGACY_RAW_IDENTIFIER",
    "SESSIONS_BUCKET",
    "SOURCES",
    "SOURCE_CLIENT",
    "SOURCE_SERVER",
    "STREAM",
    "DlqEntry",
    "EventBatch",
    "PublishedEvent",
    "RawEventBatch",
    "bundle_msg_id",
    "decode_batch",
    "decode_batches",
    "encode_batch",
    "encode_bundle",
    "msg_id",
    "redact_detail",
    "redact_event",
    "split_events",
]

# The local stack's names (defaults); a cluster pipeline's own come from its settings.
_LOCAL = natsnames.PipelineNames()
STREAM = _LOCAL.stream
EVENTS_SUBJECT = _LOCAL.events_subject
DLQ_SUBJECT = _LOCAL.dlq_subject
KV_BUCKET = _LOCAL.config_bucket
SESSIONS_BUCKET = _LOCAL.sessions_bucket
"""KV bucket of the gateways' authenticated sessions per day (runtime/gateway/ledger.py)."""
KV_SAMPLING_KEY = natsnames.KV_SAMPLING_KEY
KV_SCHEMAS_KEY = natsnames.KV_SCHEMAS_KEY


class PublishedEvent(msgspec.Struct, omit_defaults=True, gc=False):
    """One validated event as the gateway kept it, with the rate and the sampling cohort key
    it was kept at (PROTOCOL.md §2); no cohort means the event's name (older gateways).
    Untracked by the cycle collector (`gc=False`: it cannot hold itself): twenty of them per
    envelope, alive until JetStream acks, no longer trigger collections (issue 17)."""

    seq: int
    name: str
    ts: int
    props: dict[str, Any]
    sample_rate: float = 1.0
    cohort: str = ""


SOURCE_CLIENT = "client"
SOURCE_SERVER = "server"
SOURCES = (SOURCE_CLIENT, SOURCE_SERVER)
"""Who emitted a batch's events (PROTOCOL.md §2 `source`): a player's client (the SDKs,
embedded ingest, the relay's player frames) or a game server's simulation (`ServerEmitter`
through a relay opened with `source: server`). Older gateways send none: `client`."""


class _BatchFields(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What both formats carry: the envelope's events and the session's non-identifying
    metadata. `received_at` is Unix epoch milliseconds on the gateway's clock."""

    session_id: str
    client_guid: str
    schema_version: str
    received_at: int
    events: list[PublishedEvent]
    shard: str | None = None
    region: str | None = None
    build: str | None = None
    platform: str | None = None
    latency_bucket: str | None = None
    consent_social: bool = True
    envelope_id: int | None = None
    source: str = SOURCE_CLIENT


class EventBatch(_BatchFields, omit_defaults=True, kw_only=True):
    """The events of one envelope as published (format 2): pseudonymous.

    `player_ids` maps each salt month (`YYYY-MM`, UTC) of the batch's events, and the month
    of `received_at`, to that month's `analytics_player_id`: an envelope can straddle a
    month boundary, and every event is stored under its own month's pseudonym.
    `profile_key` is the onboarding profile's key (client sessions only; PROTOCOL.md §6);
    `country` and `geo_region` are the GeoIP answer for the client's address (the address
    itself never leaves the gateway).
    """

    player_ids: dict[str, str]
    profile_key: str | None = None
    country: str | None = None
    geo_region: str | None = None


class RawEventBatch(_BatchFields, omit_defaults=True, kw_only=True):
    """Format 1: the raw player UUID and client IP. Never published since format 2; read as
    legacy messages left in the stream, JSONL captures and simulation snapshots, and turned
    into an `EventBatch` by the edge step (`privacy/edge.py`) by whoever holds the keys."""

    player_uuid: str
    client_ip: str | None = None


LEGACY_RAW_IDENTIFIER = "legacy_raw_identifier"
"""DLQ reason of a format-1 message the aggregator holds no keys for (docs/protocol.md)."""


class DlqEntry(msgspec.Struct, omit_defaults=True):
    """A message or event that can never be stored, with why. No raw player id, no IP: the
    `analytics_player_id` stands in for the player, and an undecodable payload is kept only
    as its digest and size (the original stays in the stream, inside the trust boundary)."""

    source: str  # "gateway" | "aggregator"
    reason: str  # a RejectCode or an aggregator reason such as "undecodable"
    detail: str
    at: int  # epoch ms
    analytics_player_id: str | None = None
    client_guid: str | None = None
    schema_version: str | None = None
    event: dict[str, Any] | None = None
    payload_sha256: str | None = None
    payload_bytes: int | None = None
    stream_seq: int | None = None

    def __post_init__(self) -> None:
        self.detail = redact_detail(self.detail)
        if self.event is not None:
            self.event = redact_event(self.event)


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NOT_ONE_OF = re.compile(
    r"^(?P<head>.*?)(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)"
    r" is not one of (?P<allowed>\[.*\])$"
)
_REDACTED = "<value>"
_SAFE_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")  # schema prop names; anything else is hidden
_MAX_DETAIL = 300


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A refused event as the DLQ keeps it: seq, name and ts, and props with every string
    value replaced (a refused value is by definition not one the schema vouches for, and an
    identifier field can hold a UUID or an IP). Numbers and booleans stay. Idempotent."""
    kept: dict[str, Any] = {k: event[k] for k in ("seq", "name", "ts") if k in event}
    props = event.get("props")
    if isinstance(props, dict):
        kept["props"] = {
            str(key) if _SAFE_KEY.fullmatch(str(key)) else _REDACTED: (
                value if isinstance(value, bool | int | float) or value is None else _REDACTED
            )
            for key, value in props.items()
        }
    return kept


def redact_detail(detail: str) -> str:
    """A rejection's detail without anything the client wrote: validators quote the refused
    value (`'mythic' is not one of [...]`) or key (`must not contain {'text'}`), and a
    client can put chat text, a player UUID or an IP there. The DLQ keeps the field path and
    the rule; the client's own `ack` still shows it its value. Enum lists come from the
    schema and stay. Idempotent, so a decoded entry is not redacted twice over."""
    match = _NOT_ONE_OF.match(detail)
    if match is not None and not _QUOTED.search(match["head"]):
        detail = f"{match['head']}{_REDACTED} is not one of {match['allowed']}"
        return detail[:_MAX_DETAIL]
    return _QUOTED.sub(_REDACTED, detail)[:_MAX_DETAIL]


_batch_decoder = msgspec.json.Decoder(EventBatch)
_encoder = msgspec.json.Encoder()


def encode_batch(batch: EventBatch | RawEventBatch) -> bytes:
    return _encoder.encode(batch)


def decode_batch(data: bytes) -> EventBatch:
    """Raises `msgspec.MsgspecError` for a message that is not an EventBatch."""
    return _batch_decoder.decode(data)


_parts_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def encode_bundle(parts: Sequence[bytes]) -> bytes:
    """One `analytics.events` message from encoded batches (group commit in the gateway).

    A single batch is sent as it is (the format older aggregators read); several become a JSON
    array of batches, so that one durable JetStream write carries the envelopes of many
    sessions. The array is built from the encoded parts without decoding them again.
    """
    if len(parts) == 1:
        return parts[0]
    return b"[" + b",".join(parts) + b"]"


def split_events(data: bytes) -> list[bytes]:
    """The encoded batches of one `analytics.events` message: the message itself when it is
    one batch (a JSON object), each element when it is a bundle (a JSON array). The one
    function the aggregator reads messages through. Never raises: each part is decoded (and
    refused) on its own, and a malformed bundle comes back whole, to be refused as one."""
    if data.lstrip()[:1] != b"[":
        return [data]
    try:
        return [bytes(part) for part in _parts_decoder.decode(data)]
    except (msgspec.MsgspecError, RecursionError):
        return [data]


def bundle_msg_id(part_ids: Sequence[str]) -> str:
    """`Nats-Msg-Id` of a bundle: a single part keeps its envelope's id (a client resend in
    the duplicate window is stored once); several parts get an id of their own, so the same
    bundle published twice is stored once. A resend that lands in another bundle is stored
    again and the (player, installation, seq) key of the hot store keeps its rows once."""
    if len(part_ids) == 1:
        return part_ids[0]
    digest = hashlib.blake2b("\n".join(part_ids).encode(), digest_size=16).hexdigest()
    return f"bundle-{digest}"


def decode_batches(data: bytes) -> list[EventBatch]:
    """Every batch of one `analytics.events` message (one, or a bundle's). Raises
    `msgspec.MsgspecError` when a part is not an EventBatch."""
    return [decode_batch(part) for part in split_events(data)]


def msg_id(player_key: str, client_guid: str, first_seq: int, last_seq: int) -> str:
    """`Nats-Msg-Id` of an envelope: a client retry of the same envelope inside the stream's
    duplicate window is stored once. Seqs are unique per installation, the player keeps one
    forged `client_guid` from colliding with another player's envelopes. `player_key` is the
    player's secret-keyed, month-stable key (the edge's `profile_key`), never the raw UUID;
    hashed again, so headers show neither."""
    key = f"{player_key.lower()}/{client_guid.lower()}/{first_seq}-{last_seq}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
