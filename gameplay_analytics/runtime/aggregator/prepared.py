"""What the enricher makes of one message: its rows, their binary COPY, session and profile
updates, DLQ entries and drops.

The rows are built when something reads them (`PreparedMessage.rows`): the commit sends the
binary COPY the enricher encoded (`storage.copy_binary`), so in the common case no row tuple
and no `datetime` per event is made at all; a duplicate, an erased player, a refused batch,
the payload log and the replay read them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import uuid
from typing import Any, Final

from gameplay_analytics.contract.messages import DlqEntry
from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.runtime.storage.hot import EventRow, SessionUpdate
from gameplay_analytics.runtime.storage.profile import ProfileUpdate

__all__ = ["DlqItem", "PreparedMessage", "Shared", "Stored", "event_time"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_timedelta: Final = dt.timedelta
_CATEGORY: Final = {name: spec.category.value for name, spec in EVENTS.items()}

Stored = tuple[Any, tuple[dt.date, str, Any]]
"""One stored event (seq, name, ts, props as raw JSON, sample_rate) and (its day, its
player's `analytics_player_id`, the enricher's per-day COPY values)."""


def event_time(ts_ms: int) -> dt.datetime:
    """An event time (epoch ms) as a UTC datetime; positional milliseconds, since keyword
    arguments cost as much again."""
    return _EPOCH + _timedelta(0, 0, 0, ts_ms)


@dataclasses.dataclass(frozen=True, slots=True)
class DlqItem:
    """A DLQ entry and its Nats-Msg-Id, so a redelivered batch does not repeat it."""

    entry: DlqEntry
    msg_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Shared:
    """The values every row of one message shares."""

    client_guid: uuid.UUID
    received_at: dt.datetime
    session_id: str
    schema_version: str
    build: str | None
    platform: str | None
    shard: str | None
    region: str | None
    country: str | None
    latency_bucket: str | None
    geo_region: str | None
    envelope_id: int | None
    stream_seq: int
    source: str


@dataclasses.dataclass(slots=True)
class PreparedMessage:
    """What one message turns into; kept per message so a bad one can be isolated."""

    stream_seq: int
    part: int = 0  # which batch of a bundled message (contract.messages.split_events)
    stored: list[Stored] = dataclasses.field(default_factory=list)
    """The events stored, in row order (`rows` builds the rows from them)."""
    shared: Shared | None = None
    copy: bytes | None = None
    """`rows` in binary COPY form (`storage.copy_binary`), None if they could not be."""
    player_ids: set[str] = dataclasses.field(default_factory=set)
    """The `analytics_player_id`s of the rows."""
    sessions: list[SessionUpdate] = dataclasses.field(default_factory=list)
    dlq: list[DlqItem] = dataclasses.field(default_factory=list)
    dropped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    analytics_player_id: str | None = None
    client_guid: str | None = None
    schema_version: str | None = None
    profile: ProfileUpdate | None = None
    _rows: list[EventRow] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def dlq_id(self) -> str:
        """`Nats-Msg-Id` stem of this part's DLQ entries: one per stream message and part."""
        if self.part == 0:
            return f"aggregator-dlq-{self.stream_seq}"
        return f"aggregator-dlq-{self.stream_seq}.{self.part}"

    @property
    def row_count(self) -> int:
        return len(self.stored)

    @property
    def rows(self) -> list[EventRow]:
        """The `analytics_events` rows, values in `schema.EVENT_COLUMNS` order (built once)."""
        if self._rows is None:
            self._rows = _rows(self.shared, self.stored) if self.shared is not None else []
        return self._rows

    @property
    def event_ms(self) -> list[int]:
        """Each row's event time in epoch ms (the commit latency metric), in row order."""
        return [event.ts for event, _ in self.stored]


def _rows(s: Shared, stored: list[Stored]) -> list[EventRow]:
    return [
        (
            player_id,
            s.client_guid,
            event.seq,
            event.name,
            _CATEGORY[event.name],
            event_time(event.ts),
            day,
            s.received_at,
            s.session_id,
            s.schema_version,
            event.sample_rate,
            s.build,
            s.platform,
            s.shard,
            s.region,
            s.country,
            s.latency_bucket,
            bytes(event.props).decode(),
            s.geo_region,
            s.envelope_id,
            s.stream_seq,
            s.source,
        )
        for event, (day, player_id, _) in stored
    ]
