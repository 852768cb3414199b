"""The hot store's schema (PROTOCOL.md §3) and its idempotent migrations.

Migrations run at every start under a Postgres advisory lock, so that replicas starting
together apply each step once; a step already recorded in `analytics_schema_migrations` is
skipped, and each step is itself written to be harmless when re-run.
"""

from __future__ import annotations

import logging
from typing import Final

import asyncpg

__all__ = [
    "DEFAULT_PARTITION",
    "ERASURES_GENERATION_TABLE",
    "ERASURES_TABLE",
    "EVENTS_TABLE",
    "EVENT_COLUMNS",
    "EXPORTS_TABLE",
    "MIGRATIONS",
    "PRIVACY_AUDIT_TABLE",
    "PROFILE_TABLE",
    "SESSIONS_TABLE",
    "SESSION_EXPORTS_TABLE",
    "migrate",
]

log = logging.getLogger(__name__)

EVENTS_TABLE: Final = "analytics_events"
SESSIONS_TABLE: Final = "analytics_sessions"
EXPORTS_TABLE: Final = "analytics_warm_exports"
SESSION_EXPORTS_TABLE: Final = "analytics_warm_session_exports"
"""The sessions' export ledger (migration 7): per start day, a digest of the hot rows last
exported and the newest `updated_at` among them (storage/warm_sessions.py)."""
DEFAULT_PARTITION: Final = "analytics_events_default"
PRIVACY_AUDIT_TABLE: Final = "analytics_privacy_audit"
# Tombstones of erased players, a digest of each pseudonym (migration 4): the writer consults
# them. Migration 2 made the column `analytics_player_id`; 4 renames and digests it.
ERASURES_TABLE: Final = "analytics_privacy_erasures"
# One row, bumped by every erasure: writers read it first and re-read the tombstones only
# when it changed; the eraser locks it ACCESS EXCLUSIVE (`erasure.without_erased`).
ERASURES_GENERATION_TABLE: Final = "analytics_privacy_erasures_generation"

# The order rows are COPied in; `stored_at` is left to its default. The first eighteen are
# PROTOCOL.md §3's columns, then extras (`geo_region` is the GeoIP subdivision, `region`
# stays the game region the gateway reported; `source` is `client` or `server`, migration 6).
EVENT_COLUMNS: Final = (
    "analytics_player_id",
    "client_guid",
    "seq",
    "event_name",
    "category",
    "event_ts",
    "event_day",
    "received_at",
    "session_id",
    "schema_version",
    "sample_rate",
    "build",
    "platform",
    "shard",
    "region",
    "country",
    "latency_bucket",
    "props",
    "geo_region",
    "envelope_id",
    "stream_seq",
    "source",
)

PROFILE_TABLE: Final = "analytics_player_profile"
"""The restricted onboarding profile (storage/profile.py): never exported, erasable."""

# Arbitrary but fixed: the lock every replica takes to migrate.
_MIGRATION_LOCK: Final = 0x6761_6D65_6D69_6772  # "gamemigr"

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        f"""
        CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
            analytics_player_id text        NOT NULL,
            client_guid         uuid        NOT NULL,
            seq                 bigint      NOT NULL,
            event_name          text        NOT NULL,
            category            text        NOT NULL,
            event_ts            timestamptz NOT NULL,
            event_day           date        NOT NULL,
            received_at         timestamptz NOT NULL,
            session_id          text        NOT NULL,
            schema_version      text        NOT NULL,
            sample_rate         real        NOT NULL,
            build               text,
            platform            text,
            shard               text,
            region              text,
            country             text,
            latency_bucket      text,
            props               jsonb       NOT NULL,
            geo_region          text,
            envelope_id         bigint,
            stream_seq          bigint,
            stored_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
            CONSTRAINT analytics_events_key
                PRIMARY KEY (analytics_player_id, client_guid, seq, event_day)
        ) PARTITION BY RANGE (event_day);

        CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION}
            PARTITION OF {EVENTS_TABLE} DEFAULT;

        CREATE TABLE IF NOT EXISTS {SESSIONS_TABLE} (
            session_id          text PRIMARY KEY,
            analytics_player_id text        NOT NULL,
            client_guid         uuid        NOT NULL,
            started_at          timestamptz,
            ended_at            timestamptz,
            end_reason          text,
            build               text,
            platform            text,
            shard               text,
            region              text,
            country             text,
            geo_region          text,
            updated_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS analytics_sessions_updated
            ON {SESSIONS_TABLE} (updated_at);

        CREATE TABLE IF NOT EXISTS {EXPORTS_TABLE} (
            event_day   date PRIMARY KEY,
            rows        bigint      NOT NULL,
            bytes       bigint      NOT NULL,
            path        text        NOT NULL,
            mode        text        NOT NULL,
            exported_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        2,
        f"""
        CREATE TABLE IF NOT EXISTS {PRIVACY_AUDIT_TABLE} (
            request_id    uuid PRIMARY KEY,
            kind          text        NOT NULL CHECK (kind IN ('erase', 'access')),
            requested_at  timestamptz NOT NULL,
            completed_at  timestamptz NOT NULL,
            rows_by_store jsonb       NOT NULL
        );

        CREATE TABLE IF NOT EXISTS {ERASURES_TABLE} (
            analytics_player_id text PRIMARY KEY,
            request_id          uuid        NOT NULL,
            erased_at           timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        3,
        f"""
        CREATE TABLE IF NOT EXISTS {ERASURES_GENERATION_TABLE} (
            only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            epoch      uuid    NOT NULL DEFAULT gen_random_uuid(),
            generation bigint  NOT NULL DEFAULT 0
        );
        INSERT INTO {ERASURES_GENERATION_TABLE} DEFAULT VALUES ON CONFLICT DO NOTHING;
        """,
    ),
    (
        4,
        f"""
        DO $$
        BEGIN
            IF EXISTS (
                SELECT 1 FROM information_schema.columns
                WHERE table_name = '{ERASURES_TABLE}' AND column_name = 'analytics_player_id'
            ) THEN
                ALTER TABLE {ERASURES_TABLE}
                    RENAME COLUMN analytics_player_id TO pseudonym_sha256;
                UPDATE {ERASURES_TABLE} SET pseudonym_sha256 =
                    encode(sha256(convert_to('erased:' || pseudonym_sha256, 'UTF8')), 'hex');
            END IF;
        END $$;
        """,
    ),
    (
        5,
        f"""
        CREATE TABLE IF NOT EXISTS {PROFILE_TABLE} (
            profile_key             text PRIMARY KEY,
            first_session_at        timestamptz,
            activation_day          date,
            character_class         text,
            region                  text,
            platform                text,
            build                   text,
            first_combat_at         timestamptz,
            first_combat_rate       real,
            first_certain_combat_at timestamptz,
            first_win_at            timestamptz,
            active_days             date[]      NOT NULL DEFAULT '{{}}',
            fights                  double precision NOT NULL DEFAULT 0,
            explores                double precision NOT NULL DEFAULT 0,
            crafts                  double precision NOT NULL DEFAULT 0,
            socials                 double precision NOT NULL DEFAULT 0,
            updated_at              timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS analytics_player_profile_activation
            ON {PROFILE_TABLE} (activation_day);
        """,
    ),
    (
        6,
        f"""
        ALTER TABLE {EVENTS_TABLE}
            ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'client';
        """,
    ),
    (
        7,
        f"""
        CREATE TABLE IF NOT EXISTS {SESSION_EXPORTS_TABLE} (
            start_day         date PRIMARY KEY,
            rows              bigint      NOT NULL,
            bytes             bigint      NOT NULL,
            path              text        NOT NULL,
            digest            text        NOT NULL,
            exported_through  timestamptz,
            exported_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS analytics_sessions_started
            ON {SESSIONS_TABLE} (started_at);
        """,
    ),
)


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied now."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS analytics_schema_migrations "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM analytics_schema_migrations")
        }
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO analytics_schema_migrations (version) VALUES ($1)", version
                )
            applied_now.append(version)
            log.info("applied hot-store migration %d", version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now
