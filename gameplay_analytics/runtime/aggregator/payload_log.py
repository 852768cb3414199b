"""A sample of stored payloads in the logs (the seed's "sample payloads to Loki"), redacted.

What a line may hold is decided here, from the prepared message (after pseudonymisation),
never from the raw payload: the `analytics_player_id` instead of the player's UUID; no client
GUID, session id or IP; event names, sequence numbers, times and categories; props with
numbers, booleans and short identifier-like tokens kept, any other text replaced by `<text>`
and UUIDs and IP addresses by the marks of `privacy.redact`. The JSON log formatter redacts
identifiers once more on the way out (`runtime/logs.py`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from gameplay_analytics.privacy.redact import redact_identifiers
from gameplay_analytics.runtime.aggregator.enrich import PreparedMessage
from gameplay_analytics.runtime.storage.schema import EVENT_COLUMNS

__all__ = ["PayloadSampler", "redact_props", "redacted_payload"]

log = logging.getLogger(__name__)

TEXT_MARK: Final = "<text>"
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.:+-]{1,32}")
"""A string kept as it is: short, no whitespace, the shape of an enum value or an id the
schema's privacy gate allows (`orc_7`, `boss`, `2025.10.1+abc`)."""
_MAX_EVENTS: Final = 20
"""Events shown per sampled message; the line says how many there were."""

_COLUMN = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_PLAYER, _SEQ, _NAME = _COLUMN["analytics_player_id"], _COLUMN["seq"], _COLUMN["event_name"]
_CATEGORY, _TS, _PROPS = _COLUMN["category"], _COLUMN["event_ts"], _COLUMN["props"]
_VERSION = _COLUMN["schema_version"]


def redact_props(value: Any) -> Any:
    """Numbers, booleans and null as they are, short tokens as they are unless they are an
    identifier, anything else `<text>`; nested objects and arrays likewise."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if not _TOKEN.fullmatch(value):
            return TEXT_MARK
        return redact_identifiers(value)
    if isinstance(value, dict):
        return {_key(k): redact_props(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_props(v) for v in value]
    return TEXT_MARK


def redacted_payload(prepared: PreparedMessage) -> dict[str, Any]:
    """The loggable view of one stored message (pure)."""
    rows = prepared.rows
    events = [
        {
            "seq": row[_SEQ],
            "name": row[_NAME],
            "category": row[_CATEGORY],
            "ts": row[_TS].isoformat(timespec="milliseconds")
            if isinstance(row[_TS], dt.datetime)
            else None,
            "props": redact_props(_decode(row[_PROPS])),
        }
        for row in rows[:_MAX_EVENTS]
    ]
    return {
        "stream_seq": prepared.stream_seq,
        "analytics_player_id": rows[0][_PLAYER] if rows else prepared.analytics_player_id,
        "schema_version": rows[0][_VERSION] if rows else prepared.schema_version,
        "events_stored": len(rows),
        "events": events,
        "dropped": dict(prepared.dropped),
        "dlq": [item.entry.reason for item in prepared.dlq],
    }


class PayloadSampler:
    """Logs about `rate` of the stored messages (0 logs none, 1 every one) at INFO."""

    def __init__(self, rate: float, *, rng: random.Random | None = None) -> None:
        self._rate = rate
        self._rng = rng or random.Random()

    def offer(self, prepared: Sequence[PreparedMessage]) -> int:
        """Log the sampled messages of a committed batch; how many were logged."""
        if self._rate <= 0:
            return 0
        logged = 0
        for p in prepared:
            if self._rate >= 1 or self._rng.random() < self._rate:
                log.info("payload sample", extra={"payload": redacted_payload(p)})
                logged += 1
        return logged


def _key(key: object) -> str:
    text = str(key)
    return text if _TOKEN.fullmatch(text) and redact_identifiers(text) == text else TEXT_MARK


def _decode(props: Any) -> Any:
    if not isinstance(props, str | bytes):
        return props
    try:
        return msgspec.json.decode(props)
    except msgspec.DecodeError:
        return TEXT_MARK
