"""Privacy requests in the hot store: erase or read one player's rows, tombstones, the audit.

A player is known here only by pseudonyms (`analytics_player_id`, one per salt month). An
erasure leaves a tombstone per pseudonym in `analytics_privacy_erasures`, a one-way digest
(`tombstone_key`) so the table holds nothing that matches a stored id, and the writer
drops any later row of a tombstoned pseudonym (`without_erased`), so a late or redelivered
event cannot bring an erased player back. Every batch reads the one row of
`analytics_privacy_erasures_generation` first (its ACCESS SHARE lock on that table lasts until
the batch commits) and re-reads the tombstones only when the generation changed, so the common
batch pays one plain single-row read and no tuple lock. The eraser locks that table ACCESS
EXCLUSIVE and bumps the generation first: the lock waits for every batch that may have missed
the tombstones to commit, then it deletes what they wrote, and later batches wait for the
eraser, then see the new generation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from gameplay_analytics.runtime.storage import profile
from gameplay_analytics.runtime.storage.schema import (
    ERASURES_GENERATION_TABLE,
    ERASURES_TABLE,
    EVENTS_TABLE,
    PRIVACY_AUDIT_TABLE,
    PROFILE_TABLE,
    SESSIONS_TABLE,
)

if TYPE_CHECKING:  # hot.py calls `without_erased`: types only, no import cycle
    from gameplay_analytics.runtime.storage.hot import EventRow, SessionUpdate
    from gameplay_analytics.runtime.storage.profile import ProfileUpdate

__all__ = [
    "PLAYER_TABLES",
    "access_hot",
    "erase_hot",
    "erased_among",
    "prune_tombstones",
    "record_audit",
    "tombstone_key",
    "without_erased",
]

PLAYER_TABLES: Final = (EVENTS_TABLE, SESSIONS_TABLE)
"""Every hot table keyed by `analytics_player_id`; the onboarding profile (keyed by its own
`profile_key`) is erased and read alongside."""


async def without_erased(
    conn: asyncpg.Connection,
    rows: Sequence[EventRow],
    sessions: list[SessionUpdate],
    profiles: Sequence[ProfileUpdate] = (),
    *,
    player_ids: Collection[str] | None = None,
) -> tuple[Sequence[EventRow], list[SessionUpdate], Sequence[ProfileUpdate]]:
    """The batch minus any row, session or onboarding profile of an erased player. Call it
    first inside the writing transaction: the lock its read holds is what an erasure waits
    for. `player_ids`: the rows' players, if the caller knows them without reading every
    row (the aggregator builds its rows only when something needs them one by one)."""
    marker = await conn.fetchrow(f"SELECT epoch, generation FROM {ERASURES_GENERATION_TABLE}")
    if marker is None:  # the row is made by the migration; without it nothing was erased
        return rows, sessions, profiles
    cached = _tombstones.get(marker["epoch"])
    if cached is None or cached[0] != marker["generation"]:
        found = await conn.fetch(f"SELECT pseudonym_sha256 FROM {ERASURES_TABLE}")
        cached = (marker["generation"], frozenset(r[0] for r in found))
        _tombstones[marker["epoch"]] = cached
    if not cached[1]:
        return rows, sessions, profiles
    ids = set(player_ids) if player_ids is not None else {row[0] for row in rows}
    ids |= {s.analytics_player_id for s in sessions}
    ids |= {p.key for p in profiles}
    erased = {i for i in ids if tombstone_key(i) in cached[1]}
    if not erased:
        return rows, sessions, profiles
    return (
        [row for row in rows if row[0] not in erased],
        [s for s in sessions if s.analytics_player_id not in erased],
        [p for p in profiles if p.key not in erased],
    )


def tombstone_key(player_id: str) -> str:
    """What a tombstone holds for a pseudonym: sha256 of it, never the pseudonym itself."""
    return hashlib.sha256(b"erased:" + player_id.encode()).hexdigest()


# {epoch of a database: (generation, its tombstones)}; an epoch is random per database.
_tombstones: dict[uuid.UUID, tuple[int, frozenset[str]]] = {}


async def erased_among(conn: asyncpg.Connection, player_ids: Collection[str]) -> set[str]:
    """Which of these pseudonyms are tombstoned: a DLQ entry of an erased player is not
    published (the writer drops its rows the same way)."""
    if not player_ids:
        return set()
    keys = {tombstone_key(i): i for i in player_ids}
    records = await conn.fetch(
        f"SELECT pseudonym_sha256 FROM {ERASURES_TABLE} WHERE pseudonym_sha256 = ANY($1::text[])",
        sorted(keys),
    )
    return {keys[r[0]] for r in records}


async def erase_hot(
    conn: asyncpg.Connection,
    player_ids: Collection[str],
    *,
    request_id: uuid.UUID,
    profile_key: str | None = None,
) -> dict[str, int]:
    """Tombstone the pseudonyms (and the onboarding profile's key) and delete their rows from
    every player table, in one transaction; returns {table: rows deleted}. A second run
    deletes nothing."""
    ids = sorted(player_ids)
    keys = [*ids, profile_key] if profile_key else ids
    deleted: dict[str, int] = {}
    async with conn.transaction():
        await _bump_generation(conn)  # waits for every batch that read the old tombstones
        await conn.execute(
            f"INSERT INTO {ERASURES_TABLE} (pseudonym_sha256, request_id) "
            "SELECT unnest($1::text[]), $2 ON CONFLICT (pseudonym_sha256) DO NOTHING",
            sorted(tombstone_key(k) for k in keys),
            request_id,
        )
        for table in PLAYER_TABLES:
            status = await conn.execute(
                f"DELETE FROM {table} WHERE analytics_player_id = ANY($1::text[])", ids
            )
            deleted[table] = int(status.rsplit(" ", 1)[-1])
        if profile_key is not None:
            deleted[PROFILE_TABLE] = await profile.erase_profile(conn, profile_key)
    return deleted


async def access_hot(
    conn: asyncpg.Connection, player_ids: Collection[str], *, profile_key: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the pseudonyms in each player table, and the onboarding profile, as
    JSON-ready dicts."""
    found: dict[str, list[dict[str, Any]]] = {}
    for table in PLAYER_TABLES:
        records = await conn.fetch(
            f"SELECT to_jsonb(t)::text AS doc FROM {table} t "
            "WHERE analytics_player_id = ANY($1::text[])",
            sorted(player_ids),
        )
        found[table] = [json.loads(r["doc"]) for r in records]
    if profile_key is not None:
        records = await conn.fetch(
            f"SELECT to_jsonb(t)::text AS doc FROM {PROFILE_TABLE} t WHERE profile_key = $1",
            profile_key,
        )
        found[PROFILE_TABLE] = [json.loads(r["doc"]) for r in records]
    return found


async def record_audit(
    conn: asyncpg.Connection,
    *,
    request_id: uuid.UUID,
    kind: str,
    requested_at: dt.datetime,
    rows_by_store: dict[str, int],
) -> None:
    """One row per request; only counts and times, never an identifier of the player."""
    await conn.execute(
        f"INSERT INTO {PRIVACY_AUDIT_TABLE} "
        "(request_id, kind, requested_at, completed_at, rows_by_store) "
        "VALUES ($1, $2, $3, clock_timestamp(), $4::jsonb)",
        request_id,
        kind,
        requested_at,
        json.dumps(rows_by_store, sort_keys=True),
    )


TOMBSTONE_MARGIN: Final = dt.timedelta(days=62)
"""How long past the warm retention a tombstone is kept: an erasure looks up pseudonyms up to
the month after the request, and an event of that month is refused as `too_old` only once
the retention has passed after it ends."""


async def prune_tombstones(
    conn: asyncpg.Connection, *, now: dt.datetime, retention_days: int
) -> int:
    """Delete the tombstones no event can match any more; returns how many."""
    horizon = now - dt.timedelta(days=retention_days) - TOMBSTONE_MARGIN
    async with conn.transaction():
        status = await conn.execute(f"DELETE FROM {ERASURES_TABLE} WHERE erased_at < $1", horizon)
        pruned = int(status.rsplit(" ", 1)[-1])
        if pruned:
            await _bump_generation(conn)
    return pruned


async def _bump_generation(conn: asyncpg.Connection) -> None:
    """Inside a transaction: wait out every batch reading the old generation, then bump it."""
    await conn.execute(f"LOCK TABLE {ERASURES_GENERATION_TABLE} IN ACCESS EXCLUSIVE MODE")
    await conn.execute(f"UPDATE {ERASURES_GENERATION_TABLE} SET generation = generation + 1")
