"""The edge step: a player's raw identity in, the pseudonymous fields of a JetStream message out.

Every publisher runs it before anything reaches the broker (the gateway's sessions, standalone
and embedded, and so the relay's `ServerEmitter` too), and so does whoever turns raw input into
messages later (replay of captures and snapshots, the aggregator for legacy format-1 messages
when it holds the keys): monthly `analytics_player_id`s, the onboarding profile key and the
GeoIP location, from one place. Pure apart from `load_edge_keys` (the salt secret file, the
GeoIP database).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from gameplay_analytics.contract.messages import SOURCE_CLIENT, EventBatch, RawEventBatch
from gameplay_analytics.privacy import profile
from gameplay_analytics.privacy.geoip import GeoIP, Location, open_geoip
from gameplay_analytics.privacy.pseudonym import (
    SALT_SECRET_ENV,
    Pseudonymiser,
    SaltBook,
    load_salt_book,
)

__all__ = ["REDACTED", "EdgeKeys", "PlayerEdge", "load_edge_keys", "month_of_ms", "seal"]

_DAY_MS: Final = 86_400_000
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_MAX_TS_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the datetime limit
_NOWHERE: Final = Location()


@functools.lru_cache(maxsize=4096)
def _month_of_day(days: int) -> str:
    day = dt.date.fromordinal(_EPOCH_ORDINAL + days)
    return f"{day.year:04d}-{day.month:02d}"


def _month_span(month: str) -> tuple[int, int]:
    """[start, end) of a `YYYY-MM` salt month in epoch ms."""
    year, number = int(month[:4]), int(month[5:7])
    first = dt.date(year, number, 1).toordinal()
    after = dt.date(year + number // 12, number % 12 + 1, 1).toordinal()
    return (first - _EPOCH_ORDINAL) * _DAY_MS, (after - _EPOCH_ORDINAL) * _DAY_MS


def month_of_ms(ts_ms: int) -> str | None:
    """The salt month (`YYYY-MM`, UTC) of an epoch-ms time; None outside 1970..9999 (such an
    event is refused downstream and needs no pseudonym)."""
    if not 0 <= ts_ms <= _MAX_TS_MS:
        return None
    return _month_of_day(ts_ms // _DAY_MS)


class EdgeKeys:
    """The secrets of the edge step: the monthly salts, the profile secret, the GeoIP reader.

    Never shown: the repr names only which keys are development ones.
    """

    __slots__ = ("_geoip", "_profile_secret", "_pseudonymiser")

    def __init__(self, *, salts: SaltBook, profile_secret: str, geoip: GeoIP | None = None) -> None:
        if not profile_secret:
            raise ValueError("the profile secret must not be empty")
        self._pseudonymiser = Pseudonymiser(salts)
        self._profile_secret = profile_secret
        self._geoip = geoip

    def __repr__(self) -> str:
        return f"EdgeKeys({self._pseudonymiser!r}, geoip={self._geoip is not None})"

    __str__ = __repr__

    @property
    def development(self) -> bool:
        """Whether player ids use the public development salt (callers warn)."""
        return self._pseudonymiser.development

    def player(self, player_uuid: str, client_ip: str | None) -> PlayerEdge:
        """One session's edge: the player's pseudonyms (computed per month on demand), profile
        key and the location of the client's address, looked up once here."""
        location = _NOWHERE
        if self._geoip is not None and client_ip:
            location = self._geoip.lookup(client_ip)
        return PlayerEdge(
            player_uuid,
            self._pseudonymiser,
            profile_key=profile.profile_key(player_uuid, self._profile_secret),
            location=location,
            client_ip=client_ip,
        )

    def close(self) -> None:
        if self._geoip is not None:
            self._geoip.close()


class PlayerEdge:
    """A player's pseudonymous identity as one session publishes it; holds the raw UUID only
    to derive a new month's id (never shown in a repr)."""

    __slots__ = (
        "_ids", "_ip", "_needles", "_pseudonymiser", "_span", "_uuid", "location", "profile_key",
    )  # fmt: skip

    def __init__(
        self,
        player_uuid: str,
        pseudonymiser: Pseudonymiser,
        *,
        profile_key: str,
        location: Location,
        client_ip: str | None = None,
    ) -> None:
        self._uuid = player_uuid.lower()
        self._ip = client_ip.lower() if client_ip else None
        self._needles = [
            n.encode() for n in (self._uuid, self._uuid.replace("-", ""), self._ip) if n
        ]
        self._pseudonymiser = pseudonymiser
        self._ids: dict[str, str] = {}
        # [start, end) epoch ms of the events' month and of the receipt's, and their ids
        self._span: tuple[int, int, int, int, dict[str, str]] = (0, 0, 0, 0, {})
        self.profile_key = profile_key
        self.location = location

    def __repr__(self) -> str:
        return f"PlayerEdge(months={sorted(self._ids)})"

    __str__ = __repr__

    def player_id(self, month: str) -> str:
        """`analytics_player_id` of `YYYY-MM` (cached: a session spans one or two months)."""
        found = self._ids.get(month)
        if found is None:
            found = self._ids[month] = self._pseudonymiser.player_id_of_month(self._uuid, month)
        return found

    def player_ids(self, times_ms: Sequence[int], *, received_at: int) -> dict[str, str]:
        """{month: analytics_player_id} for the months of `times_ms` (event times) and of
        `received_at` (the DLQ's and the session row's month)."""
        lo, hi = (min(times_ms), max(times_ms)) if times_ms else (received_at, received_at)
        # The common case, remembered: every event in one month (the last one asked for), the
        # receipt in one month (the same, or the next for late events).
        start, end, r_start, r_end, ids = self._span
        if start <= lo and hi < end and r_start <= received_at < r_end:
            return dict(ids)
        months: set[str] = set()
        first, last = month_of_ms(lo), month_of_ms(hi)
        if times_ms:
            if first is not None and first == last:  # one month: 2 lookups, not one per event
                months.add(first)
            else:
                found = (month_of_ms(ts) for ts in times_ms)
                months.update(month for month in found if month is not None)
        received = month_of_ms(received_at)
        if received is not None:
            months.add(received)
        ids = {month: self.player_id(month) for month in sorted(months)}
        if times_ms and first is not None and first == last and received is not None:
            self._span = (*_month_span(first), *_month_span(received), ids)
        return dict(ids)

    def scrub(self, payload: bytes) -> bytes:
        """`payload` (an encoded batch, either format) with the player's own UUID (dashed or
        not) and the client's IP replaced by `redacted` wherever the client wrote them into
        an event's props (an identifier prop can hold either). One lower-cased search first:
        almost no payload holds either, and then it comes back as it was, unparsed."""
        lower = payload.lower()
        if not any(needle in lower for needle in self._needles):
            return payload
        doc = msgspec.json.decode(payload)
        events = doc.get("events") if isinstance(doc, dict) else None
        if not isinstance(events, list):
            return payload
        pattern = self._pattern()
        for event in events:
            if isinstance(event, dict) and "props" in event:
                event["props"] = _redact(event["props"], pattern)
        return msgspec.json.encode(doc)

    def scrub_props(self, props: bytes) -> bytes:
        """One event's props (a JSON object) scrubbed as `scrub` does."""
        lower = props.lower()
        if not any(needle in lower for needle in self._needles):
            return props
        return msgspec.json.encode(_redact(msgspec.json.decode(props), self._pattern()))

    def _pattern(self) -> re.Pattern[str]:
        hexed = self._uuid.replace("-", "")
        needles = [re.escape(self._uuid), rf"(?<![0-9a-f]){hexed}(?![0-9a-f])"]
        if self._ip:
            needles.append(r"(?<![0-9a-f.:])" + re.escape(self._ip) + r"(?![0-9a-f.:])")
        return re.compile("|".join(needles), re.IGNORECASE)


REDACTED: Final = "redacted"
"""What replaces the identifier: a bare word, so that the identifier patterns of the schema
(`^[A-Za-z0-9_.:/-]{1,64}$`) still accept the event downstream."""


def _redact(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {_redact(k, pattern): _redact(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, pattern) for v in value]
    return value


def seal(raw: RawEventBatch, keys: EdgeKeys) -> EventBatch:
    """The format-2 batch of a format-1 one: the edge step for input that did not pass a
    current gateway (legacy messages, captures, snapshots). Props are kept as they are: a
    publisher passes the encoded batch through `PlayerEdge.scrub`."""
    edge = keys.player(raw.player_uuid, raw.client_ip)
    return EventBatch(
        session_id=raw.session_id, client_guid=raw.client_guid,
        schema_version=raw.schema_version, received_at=raw.received_at, events=raw.events,
        shard=raw.shard, region=raw.region, build=raw.build, platform=raw.platform,
        latency_bucket=raw.latency_bucket, consent_social=raw.consent_social,
        envelope_id=raw.envelope_id, source=raw.source,
        player_ids=edge.player_ids([e.ts for e in raw.events], received_at=raw.received_at),
        profile_key=edge.profile_key if raw.source == SOURCE_CLIENT else None,
        country=edge.location.country, geo_region=edge.location.region,
    )  # fmt: skip


def load_edge_keys(
    *,
    salt_secret: str | None,
    salt_secret_file: Path | None,
    profile_secret: str | None,
    geoip_db: Path | None,
) -> tuple[EdgeKeys, list[str]]:
    """The edge's keys from a process's settings, and what the caller must warn about (the
    public development salt or profile secret). The salt file wins over the secret; the
    profile secret is derived from the salt master secret when not given
    (privacy/profile.py). A GeoIP path that is not a MaxMind database raises ValueError."""
    env = {SALT_SECRET_ENV: salt_secret} if salt_secret else {}
    salts = load_salt_book(secret_file=salt_secret_file, env=env)
    warnings: list[str] = []
    if salts.development:
        warnings.append("no salt secret configured: player ids use the public development salt")
    secret = profile.profile_secret(profile_secret, salts)
    if secret is None:
        warnings.append(
            "no profile secret configured: profile keys use the public development secret"
        )
        secret = profile.DEVELOPMENT_PROFILE_SECRET
    return EdgeKeys(salts=salts, profile_secret=secret, geoip=open_geoip(geoip_db)), warnings
