"""`analytics_events` rows in PostgreSQL's binary COPY format, encoded as they are built.

asyncpg's `copy_records_to_table` encodes every value of every row (22 per event, most of
them the same for all the events of a message): that was the largest share of the
aggregator's CPU after preparation. The enricher knows which values a message shares, so it
encodes them once per message (`MessageCopy`) and per event only what differs (seq, name,
times, rate, props). `hot.write_batch` sends the result with one `COPY … FROM STDIN (FORMAT
binary)`. The column order is `schema.EVENT_COLUMNS`; a test compares what the two ways store.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Final

from gameplay_analytics.runtime.storage.schema import EVENT_COLUMNS

__all__ = ["HEADER", "TRAILER", "Encoded", "MessageCopy", "NamePart", "name_part", "stream"]

HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
"""Signature, flags (no OIDs), header extension length 0."""
TRAILER: Final = b"\xff\xff"

_PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z, PostgreSQL's epoch
_PG_EPOCH_DAYS: Final = 10_957
_NULL: Final = b"\xff\xff\xff\xff"
_FIELDS: Final = struct.pack(">h", len(EVENT_COLUMNS))
_INT8: Final = struct.Struct(">iq")
_INT4: Final = struct.Struct(">ii")
_FLOAT4: Final = struct.Struct(">if")
_pack_jsonb: Final = struct.Struct(">ib").pack  # length, then jsonb's version byte (1)


def text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def int8(value: int | None) -> bytes:
    return _NULL if value is None else _INT8.pack(8, value)


def timestamptz(ms: int) -> bytes:
    """Epoch milliseconds as timestamptz (microseconds since 2000-01-01 UTC)."""
    return _INT8.pack(8, (ms - _PG_EPOCH_MS) * 1000)


@dataclasses.dataclass(frozen=True, slots=True)
class Encoded:
    """A batch's rows in binary COPY form (each message's tuples), and whose rows they are."""

    chunks: Sequence[bytes]
    player_ids: Collection[str]


class MessageCopy:
    """The binary COPY tuples of one message's rows; `add` one per stored event.

    The values a message shares are encoded once, around the per-event ones; the columns
    are, in order: (player, guid) | seq, name, category, event_ts | day, received_at,
    session_id, schema_version | sample_rate, build … latency_bucket | props | geo_region,
    envelope_id, stream_seq, source.
    """

    __slots__ = ("_by_day", "_by_rate", "_days", "_guid", "_middle", "_tail", "parts")

    def __init__(
        self,
        *,
        client_guid: uuid.UUID,
        received_ms: int,
        session_id: str,
        schema_version: str,
        build: str | None,
        platform: str | None,
        shard: str | None,
        region: str | None,
        country: str | None,
        latency_bucket: str | None,
        geo_region: str | None,
        envelope_id: int | None,
        stream_seq: int,
        source: str,
    ) -> None:
        self._guid = struct.pack(">i", 16) + client_guid.bytes
        self._days = timestamptz(received_ms) + text(session_id) + text(schema_version)
        self._middle = b"".join(
            text(v) for v in (build, platform, shard, region, country, latency_bucket)
        )
        self._tail = text(geo_region) + int8(envelope_id) + int8(stream_seq) + text(source)
        self._by_day: dict[tuple[int, str], tuple[bytes, bytes]] = {}
        self._by_rate: dict[float, bytes] = {}
        self.parts: list[bytes | memoryview] = []

    def day(self, days: int, player_id: str) -> tuple[bytes, bytes]:
        """The row's head (field count, player, guid) and its day's part, for `add`."""
        found = self._by_day.get((days, player_id))
        if found is None:
            head = _FIELDS + text(player_id) + self._guid
            day = _INT4.pack(4, days - _PG_EPOCH_DAYS) + self._days
            found = self._by_day[(days, player_id)] = (head, day)
        return found

    def rate(self, sample_rate: float) -> bytes:
        found = self._by_rate.get(sample_rate)
        if found is None:
            found = self._by_rate[sample_rate] = _FLOAT4.pack(4, sample_rate) + self._middle
        return found

    def add(
        self,
        where: tuple[bytes, bytes],
        seq: int,
        names: NamePart,
        ts_ms: int,
        rate: bytes,
        props: bytes | memoryview,
    ) -> None:
        """One row: `where` from `day`, `names` from `name_part`, `rate` from `rate`."""
        head, day = where
        pack, name = names
        self.parts += (
            head, pack(8, seq, name, 8, (ts_ms - _PG_EPOCH_MS) * 1000), day, rate,
            _pack_jsonb(len(props) + 1, 1), props, self._tail,
        )  # fmt: skip

    def encoded(self) -> bytes:
        """The tuples of every row added, in order."""
        return b"".join(self.parts)


NamePart = tuple[Callable[..., bytes], bytes]
"""How a row's seq, name, category and event_ts are packed in one call, and the name and
category's encoding (`name_part`)."""
_NAMES: dict[tuple[str, str], NamePart] = {}


def name_part(name: str, category: str) -> NamePart:
    """An event name and its category, encoded (cached: the taxonomy is small), with the
    packer of seq, them and the event time."""
    found = _NAMES.get((name, category))
    if found is None:
        encoded = text(name) + text(category)
        pack = struct.Struct(f">iq{len(encoded)}siq").pack
        found = _NAMES[(name, category)] = (pack, encoded)
    return found


async def stream(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    """A COPY's input: the header, each message's tuples, the trailer."""
    yield HEADER
    for chunk in chunks:
        yield chunk
    yield TRAILER
