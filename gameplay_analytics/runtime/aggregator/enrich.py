"""From one JetStream message to hot-store rows: validate, guard, enrich.

Pure: no network, no database. Messages arrive pseudonymised (format 2: the gateway ran the
edge step, `privacy/edge.py`), so rows take each event's month's `analytics_player_id`, the
profile key and the location from the message. A legacy format-1 message (raw player UUID
and IP) is sealed here with the edge's own code when the enricher was given the keys (replay
of captures and old stream ranges), and otherwise dead-lettered as `legacy_raw_identifier`.
A message that can never be stored becomes DLQ entries, carrying `analytics_player_id` and
never a raw UUID or IP; everything else becomes rows, session updates, or a counted drop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import struct
import uuid
from typing import Any, Final

import msgspec

from gameplay_analytics.contract.errors import RejectCode
from gameplay_analytics.contract.messages import (
    LEGACY_RAW_IDENTIFIER,
    SOURCE_CLIENT,
    SOURCES,
    DlqEntry,
    EventBatch,
    RawEventBatch,
)
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.contract.taxonomy import EVENTS, Category
from gameplay_analytics.privacy.edge import EdgeKeys, month_of_ms
from gameplay_analytics.privacy.geoip import Location
from gameplay_analytics.runtime.aggregator.prepared import (
    DlqItem,
    PreparedMessage,
    Shared,
    event_time,
)
from gameplay_analytics.runtime.storage.copy_binary import MessageCopy, name_part
from gameplay_analytics.runtime.storage.hot import SessionUpdate
from gameplay_analytics.runtime.storage.profile import PROFILE_EVENTS, PROFILE_PROPS, ProfileUpdate
from gameplay_analytics.sampling import hashing

__all__ = ["DEFAULT_MAX_CLOCK_SKEW", "DlqItem", "Enricher", "PreparedMessage", "TimeBounds"]

_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_DAY_MS: Final = 86_400_000
_MAX_TS_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the datetime limit
_LIFECYCLE: Final = frozenset({"session_start", "session_end", "session_crash"})

DEFAULT_MAX_CLOCK_SKEW: Final = dt.timedelta(minutes=10)
_NO_COPY: Final = (b"", b"")


@dataclasses.dataclass(frozen=True, slots=True)
class TimeBounds:
    """Which event times are stored: not more than `max_skew` ahead of the gateway's receive
    time (a deterministic clock: a redelivery judges the same), and not on a day the warm
    retention has already passed as of processing (it would be deleted unseen)."""

    max_skew: dt.timedelta = DEFAULT_MAX_CLOCK_SKEW
    retention_days: int = 183

    def window(self, *, received_ms: int, now_ms: int) -> tuple[int, int]:
        """The first and last event time (epoch ms) stored from a message received at
        `received_ms` and processed at `now_ms`; `refuse` says why a time outside is not."""
        first_day = now_ms // _DAY_MS - self.retention_days
        return first_day * _DAY_MS, received_ms + self.max_skew // dt.timedelta(milliseconds=1)

    def refuse(self, ts_ms: int, *, received_ms: int, now_ms: int) -> tuple[RejectCode, str] | None:
        first, last = self.window(received_ms=received_ms, now_ms=now_ms)
        if ts_ms > last:
            ahead = dt.timedelta(milliseconds=ts_ms - received_ms)
            return RejectCode.CLOCK_SKEW, f"ts: {ahead} ahead of the server clock"
        if ts_ms < first:
            return RejectCode.TOO_OLD, f"ts: older than the {self.retention_days}-day retention"
        return None


_SPECS: Final = {
    name: (spec, name_part(name, spec.category.value), spec.consent == "social")
    for name, spec in EVENTS.items()
}
"""Per event name: its taxonomy entry, its name and category as binary COPY values, and
whether it needs the social consent."""
_PER_EVENT: Final = _LIFECYCLE | PROFILE_EVENTS
"""The events a client's session or profile reads one by one (others: only their day)."""


class _WireEvent(msgspec.Struct):
    """An event as the schema sees it, props kept as raw JSON (stored as they came)."""

    seq: int
    name: str
    ts: int
    props: msgspec.Raw = msgspec.Raw(b"{}")


class _RatedEvent(_WireEvent):
    sample_rate: float = 1.0
    cohort: str = ""


def _batch_view(name: str, contract: type[msgspec.Struct]) -> Any:
    """A batch format field for field, but with props left as raw JSON: decoding a message
    without building a dict per event is the aggregator's largest single saving, and deriving
    the fields from the contract keeps the two in step."""
    fields: list[Any] = []
    for f in msgspec.structs.fields(contract):
        kind = list[_RatedEvent] if f.name == "events" else f.type
        fields.append((f.name, kind) if f.required else (f.name, kind, f.default))
    return msgspec.defstruct(name, fields, kw_only=True)


_BatchView = _batch_view("_BatchView", EventBatch)
_batch_decoder = msgspec.json.Decoder(_BatchView)
_LegacyView = _batch_view("_LegacyView", RawEventBatch)
_legacy_decoder = msgspec.json.Decoder(_LegacyView)
_SHARED: Final = tuple(f.name for f in msgspec.structs.fields(RawEventBatch)
                       if f.name not in ("player_uuid", "client_ip"))  # fmt: skip
_encode = msgspec.json.Encoder().encode


class Enricher:
    """Turns `EventBatch` messages into rows; one per aggregator, caches are per message."""

    def __init__(
        self,
        *,
        registry: SchemaRegistry,
        bounds: TimeBounds | None = None,
        legacy: EdgeKeys | None = None,
    ) -> None:
        """`legacy`: the edge's keys, to seal format-1 input (replay); without them (the
        live aggregator holds no salt) a format-1 message is dead-lettered."""
        self._bounds = bounds or TimeBounds()
        self._registry = registry
        self._legacy = legacy
        self._days: dict[int, dt.date] = {}

    @property
    def schema_versions(self) -> list[str]:
        return self._registry.versions

    def use_registry(self, registry: SchemaRegistry) -> None:
        """Schema versions hot-reloaded from NATS KV (the operator's SchemaVersions)."""
        self._registry = registry

    def prepare(
        self, data: bytes, *, stream_seq: int, now_ms: int, part: int = 0
    ) -> PreparedMessage:
        """Rows, session updates, DLQ entries and guard drops of one batch (`part` of the
        message at `stream_seq`)."""
        out = PreparedMessage(stream_seq, part)
        recheck: str | None = None  # the raw UUID of a sealed legacy message (see _seal)
        try:
            batch = _batch_decoder.decode(data)
        except msgspec.MsgspecError as err:
            try:
                legacy = _legacy_decoder.decode(data)
            except msgspec.MsgspecError:
                out.dlq.append(_undecodable(data, out, now_ms, str(err)))
                return out
            out.client_guid, out.schema_version = legacy.client_guid, legacy.schema_version
            if self._legacy is None:
                why = "a format-1 message (raw player id): this aggregator holds no salt"
                out.dlq.append(self._whole(out, data, now_ms, LEGACY_RAW_IDENTIFIER, why))
                return out
            batch, recheck = _seal(legacy, self._legacy), legacy.player_uuid
        out.client_guid, out.schema_version = batch.client_guid, batch.schema_version
        player_ids: dict[str, str] = batch.player_ids
        out.analytics_player_id = player_ids.get(month_of_ms(batch.received_at) or "")
        try:
            guid = uuid.UUID(batch.client_guid)
        except ValueError as err:
            out.dlq.append(self._whole(out, data, now_ms, "invalid_message", str(err)))
            return out
        source = batch.source
        if source not in SOURCES:
            why = f"source {source[:32]!r} is not one of {list(SOURCES)}"
            out.dlq.append(self._whole(out, data, now_ms, "invalid_message", why))
            return out
        client = source == SOURCE_CLIENT  # sessions and the profile follow the client only
        validator = self._registry.validator(batch.schema_version)
        if validator is None:
            why = f"schema version {batch.schema_version!r} is not accepted"
            out.dlq.append(self._whole(out, data, now_ms, "unknown_schema_version", why))
            return out
        invalid = self._invalid(validator, batch.events)
        location = Location(batch.country, batch.geo_region)
        received_ms = batch.received_at
        first_ts, last_ts = self._bounds.window(received_ms=received_ms, now_ms=now_ms)
        players: dict[int, tuple[dt.date, str, tuple[bytes, bytes]]] = {}  # by day number
        kept: dict[tuple[str, float], bool] = {}
        out.shared = shared = Shared(
            guid, event_time(received_ms), batch.session_id, batch.schema_version,
            batch.build, batch.platform, batch.shard, batch.region, location.country,
            batch.latency_bucket, location.region, batch.envelope_id, stream_seq, source,
        )  # fmt: skip
        profile_key = batch.profile_key if client else None
        copy = _message_copy(shared, received_ms)
        stored = out.stored
        # Inside [low, high] an event is representable and within the window: no more checks.
        low, high = max(first_ts, 0), min(last_ts, _MAX_TS_MS)
        no_social = not batch.consent_social
        last_rate, rate_part = None, b""
        for index, event in enumerate(batch.events):
            ts = event.ts
            if invalid or not low <= ts <= high:
                refused = self._refusal(out, index, event, invalid, now_ms, received_ms)
                if refused is not None:
                    out.dlq.append(refused)
                    continue
            name = event.name
            spec, names, social = _SPECS[name]
            if social and no_social:
                out.dropped["consent"] += 1
                continue
            if recheck is not None:
                # Past the edge the gateway's guard decision is final (the same hash, PROTOCOL
                # §2); only a sealed legacy message, its raw UUID at hand, is re-checked.
                cohort = event.cohort or name
                decision = kept.get((cohort, event.sample_rate))
                if decision is None:
                    decision = hashing.keep(recheck, cohort, rate=event.sample_rate)
                    kept[(cohort, event.sample_rate)] = decision
                if not decision:
                    out.dropped["sampling"] += 1
                    continue
            days = ts // _DAY_MS
            player = players.get(days)
            if player is None:
                found = player_ids.get(month_of_ms(ts) or "")
                if found is None:
                    why = f"ts: no analytics_player_id for its month {month_of_ms(ts)}"
                    out.dlq.append(self._rejected(out, index, event, now_ms, why))
                    continue
                where = _NO_COPY
                if copy is not None:
                    try:
                        where = copy.day(days, found)
                    except UnicodeEncodeError:  # Postgres will refuse the row: poison
                        copy = None
                player = players[days] = (self._day(days), found, where)
            stored.append((event, player))
            if copy is not None:
                rate = event.sample_rate
                try:
                    if rate != last_rate:
                        last_rate, rate_part = rate, copy.rate(rate)
                    copy.add(player[2], event.seq, names, ts, rate_part, event.props)
                except (struct.error, OverflowError):  # Postgres will refuse the row: poison
                    copy = None
            if profile_key is None or name not in _PER_EVENT:  # most events end here
                continue
            event_ts, props = event_time(ts), None
            if name in _LIFECYCLE and spec.category is Category.SESSION:
                props = msgspec.json.decode(event.props)
                out.sessions.append(_session(shared, name, props, event_ts, player[1]))
            if name in PROFILE_EVENTS:
                if out.profile is None:
                    out.profile = ProfileUpdate(profile_key)
                if props is None and name in PROFILE_PROPS:
                    props = msgspec.json.decode(event.props)
                out.profile.observe(
                    name, event_ts, rate=event.sample_rate, props=props or {},
                    region=batch.region, platform=batch.platform, build=batch.build,
                )  # fmt: skip
        out.player_ids.update(player_id for _, player_id, _ in players.values())
        if profile_key is not None and stored:
            if out.profile is None:
                out.profile = ProfileUpdate(profile_key)
            out.profile.active_days.update(day for day, _, _ in players.values())
        if copy is not None:
            out.copy = copy.encoded()
        return out

    # -- private ---------------------------------------------------------------------------

    def _day(self, days: int) -> dt.date:
        found = self._days.get(days)
        if found is None:
            found = self._days[days] = dt.date.fromordinal(_EPOCH_ORDINAL + days)
        return found

    def _refusal(
        self,
        out: PreparedMessage,
        index: int,
        event: Any,
        invalid: dict[int, str],
        now_ms: int,
        received_ms: int,
    ) -> DlqItem | None:
        """Why an event is not stored (schema, representable range, time window), or None."""
        ts = event.ts
        detail = invalid.get(index)
        if detail is None and not 0 <= ts <= _MAX_TS_MS:
            detail = f"ts: {ts} is outside the representable range"
        if detail is not None:
            return self._rejected(out, index, event, now_ms, detail)
        refused = self._bounds.refuse(ts, received_ms=received_ms, now_ms=now_ms)
        if refused is not None:
            reason, why = refused
            return self._rejected(out, index, event, now_ms, why, reason)
        return None

    @staticmethod
    def _invalid(validator: Any, events: list[Any]) -> dict[int, str]:
        """{index: why} of the events that fail their version's schema (usually none).

        The validator sees each event as the client sent it, without the gateway's
        `sample_rate`: rebuilt from the decoded events, props still raw, which costs far less
        than decoding the message a second time."""
        if not events:
            return {}
        wire = [_WireEvent(e.seq, e.name, e.ts, e.props) for e in events]
        result = validator.validate(_encode(wire))
        if not result.rejected and len(result.accepted) == len(events):
            return {}
        # Rare: find each culprit by index with the reference validator.
        invalid = {}
        for index, event in enumerate(events):
            doc = {"seq": event.seq, "name": event.name, "ts": event.ts, "props": _props(event)}
            detail = validator.validate_event(doc)
            if detail is not None:
                invalid[index] = detail
        return invalid

    def _whole(
        self, out: PreparedMessage, data: bytes, now_ms: int, reason: str, detail: str
    ) -> DlqItem:
        entry = DlqEntry(
            source="aggregator", reason=reason, detail=detail, at=now_ms,
            analytics_player_id=out.analytics_player_id, client_guid=out.client_guid,
            schema_version=out.schema_version, payload_sha256=hashlib.sha256(data).hexdigest(),
            payload_bytes=len(data), stream_seq=out.stream_seq,
        )  # fmt: skip
        return DlqItem(entry, out.dlq_id)

    @staticmethod
    def _rejected(
        out: PreparedMessage,
        index: int,
        event: Any,
        now_ms: int,
        detail: str,
        reason: RejectCode = RejectCode.INVALID_EVENT,
    ) -> DlqItem:
        entry = DlqEntry(
            source="aggregator", reason=reason.value, detail=detail, at=now_ms,
            analytics_player_id=out.analytics_player_id, client_guid=out.client_guid,
            schema_version=out.schema_version, stream_seq=out.stream_seq,
            event={"seq": event.seq, "name": event.name, "ts": event.ts, "props": _props(event)},
        )  # fmt: skip
        return DlqItem(entry, f"{out.dlq_id}-{index}")


def _seal(legacy: Any, keys: EdgeKeys) -> Any:
    """The format-2 view of a format-1 one: the edge step (privacy/edge.py) run here, the
    player's own UUID and IP redacted from props as the gateway would have."""
    edge = keys.player(legacy.player_uuid, legacy.client_ip)
    times = [e.ts for e in legacy.events]
    for event in legacy.events:
        event.props = msgspec.Raw(edge.scrub_props(bytes(event.props)))
    return _BatchView(
        **{name: getattr(legacy, name) for name in _SHARED},
        player_ids=edge.player_ids(times, received_at=legacy.received_at),
        profile_key=edge.profile_key if legacy.source == SOURCE_CLIENT else None,
        country=edge.location.country, geo_region=edge.location.region,
    )  # fmt: skip


def _props(event: Any) -> Any:
    return msgspec.json.decode(event.props)


def _undecodable(data: bytes, out: PreparedMessage, now_ms: int, detail: str) -> DlqItem:
    # The payload may hold a raw UUID or IP: only its digest and size leave the stream.
    entry = DlqEntry(
        source="aggregator", reason="undecodable", detail=detail[:200], at=now_ms,
        payload_sha256=hashlib.sha256(data).hexdigest(), payload_bytes=len(data),
        stream_seq=out.stream_seq,
    )  # fmt: skip
    return DlqItem(entry, out.dlq_id)


def _message_copy(s: Shared, received_ms: int) -> MessageCopy | None:
    """The message's shared COPY values, or None if one cannot be encoded (out of range:
    Postgres refuses the rows, `rows` take the path that dead-letters them)."""
    try:
        return MessageCopy(
            client_guid=s.client_guid, received_ms=received_ms, session_id=s.session_id,
            schema_version=s.schema_version, build=s.build, platform=s.platform,
            shard=s.shard, region=s.region, country=s.country,
            latency_bucket=s.latency_bucket, geo_region=s.geo_region,
            envelope_id=s.envelope_id, stream_seq=s.stream_seq, source=s.source,
        )  # fmt: skip
    except (struct.error, OverflowError, UnicodeEncodeError):
        return None


def _session(
    s: Shared, name: str, props: dict[str, Any], event_ts: dt.datetime, player_id: str
) -> SessionUpdate:
    update = SessionUpdate(
        s.session_id, player_id, s.client_guid, build=s.build, platform=s.platform,
        shard=s.shard, region=s.region, country=s.country, geo_region=s.geo_region,
    )  # fmt: skip
    if name == "session_start":
        update.started_at = event_ts
    else:
        update.ended_at = event_ts
        reason = props.get("reason") if name == "session_end" else "crash"
        update.end_reason = reason if isinstance(reason, str) else None
    return update
