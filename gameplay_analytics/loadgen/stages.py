"""Where an event's time goes between `track()` and its Postgres row, from stamps already kept.

Every stored row carries `event_ts` (the client's `track()`), `received_at` (the gateway read
its frame), `stream_seq` (its JetStream message) and `stored_at` (clock_timestamp() at COPY);
the stream keeps each message's store time. From a sample of a run's rows:

- `sdk`: track() → gateway received (the SDK's buffer until its next flush, the wire, the
  gateway's read);
- `gateway`: received → JetStream stored (admission, intake, group-commit window, the publish;
  the stream stamps a message before its fsync, so the fsync falls in the next stage);
- `aggregator`: JetStream stored → row (fsync and publish ack, the aggregator's fetch, its
  preparation and the COPY up to that row);
- `total`: track() → row.

All on one machine's clock for the local stack. `received_at` has millisecond precision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import nats.js.errors
from nats.js import JetStreamContext

__all__ = [
    "STAGES",
    "StageLatency",
    "StampedRow",
    "sample_rows",
    "stage_latencies",
    "stamped",
    "stream_times",
]

STAGES = ("sdk", "gateway", "aggregator", "total")
_SAMPLE_MESSAGES = 400  # distinct stream messages looked up (one get each)


@dataclass(frozen=True, slots=True)
class StampedRow:
    """One stored event's stamps, Unix seconds; `stream_at` None when the message is gone."""

    event_ts: float
    received_at: float
    stream_at: float | None
    stored_at: float


@dataclass(frozen=True, slots=True)
class StageLatency:
    stage: str
    events: int
    p50_ms: float
    p95_ms: float


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Postgres' percentile_cont)."""
    if not ordered:
        return 0.0
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stage_latencies(rows: Sequence[StampedRow]) -> list[StageLatency]:
    """p50 and p95 of each stage over `rows` (rows without a stream time count in `sdk` and
    `total` only). Pure."""
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for r in rows:
        spans["sdk"].append(r.received_at - r.event_ts)
        spans["total"].append(r.stored_at - r.event_ts)
        if r.stream_at is not None:
            spans["gateway"].append(r.stream_at - r.received_at)
            spans["aggregator"].append(r.stored_at - r.stream_at)
    out = []
    for stage in STAGES:
        ordered = sorted(spans[stage])
        out.append(
            StageLatency(
                stage,
                len(ordered),
                round(1000 * _percentile(ordered, 0.5), 1),
                round(1000 * _percentile(ordered, 0.95), 1),
            )
        )
    return out


async def sample_rows(
    conn: asyncpg.Connection,
    guids: Sequence[str],
    *,
    since: float,
    messages: int = _SAMPLE_MESSAGES,
) -> list[tuple[float, float, int, float]]:
    """(event_ts, received_at, stream_seq, stored_at) of every row of up to `messages` random
    stream messages among the run's events tracked after `since` (Unix seconds)."""
    rows = await conn.fetch(
        """
        WITH picked AS (
            SELECT DISTINCT stream_seq FROM analytics_events
            WHERE client_guid = ANY($1::uuid[]) AND event_ts >= to_timestamp($2)
              AND stream_seq IS NOT NULL
            ORDER BY stream_seq LIMIT 100000
        ), chosen AS (SELECT stream_seq FROM picked ORDER BY random() LIMIT $3)
        SELECT extract(epoch FROM event_ts)::float8, extract(epoch FROM received_at)::float8,
               stream_seq, extract(epoch FROM stored_at)::float8
        FROM analytics_events JOIN chosen USING (stream_seq)
        WHERE client_guid = ANY($1::uuid[]) AND event_ts >= to_timestamp($2)
        """,
        list(guids),
        since,
        messages,
    )
    return [(float(r[0]), float(r[1]), int(r[2]), float(r[3])) for r in rows]


async def stream_times(js: JetStreamContext, stream: str, seqs: Sequence[int]) -> dict[int, float]:
    """Store time (Unix seconds) of each stream message still in `stream`."""
    out: dict[int, float] = {}
    for seq in sorted(set(seqs)):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            msg = await js.get_msg(stream, seq=seq)
            stamp = msg.time
            if stamp is not None:
                out[seq] = stamp.replace(tzinfo=stamp.tzinfo or dt.UTC).timestamp()
    return out


def stamped(
    rows: Sequence[tuple[float, float, int, float]], times: dict[int, float]
) -> list[StampedRow]:
    return [StampedRow(ts, received, times.get(seq), stored) for ts, received, seq, stored in rows]
