"""The warm store: one zstd Parquet file per closed day, `gameplay/event_date=YYYY-MM-DD/`.

Each day is one file, so replacing a day is atomic on every filesystem: a POSIX rename and an
S3 PUT both swap one object whole, and a reader sees the old day or the new one, never both.
The export ledger (`analytics_warm_exports`) records each exported day and its row count, so
a restart neither skips nor duplicates a day, and a day whose hot rows changed since (late
arrivals) is exported again. A day whose hot partition is gone (its late rows sit in the
default partition) is *merged*: the rows are deleted from Postgres, unioned with the existing
Parquet by key, and written back, in one transaction that commits only after the file is
written; a crash in between leaves rows in both places, and the next merge drops the repeats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Final

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from gameplay_analytics.runtime.storage import partitions, warm_schedule
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root
from gameplay_analytics.runtime.storage.schema import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    EXPORTS_TABLE,
    SESSION_EXPORTS_TABLE,
)

__all__ = [
    "DATA_FILE",
    "EVENTS_DATASET",
    "SESSIONS_DATASET",
    "WARM_DATASETS",
    "WARM_SCHEMA",
    "ExportedDay",
    "WarmStore",
    "apply_warm_retention",
    "export_closed_days",
]

log = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
EVENTS_DATASET: Final = "gameplay"
SESSIONS_DATASET: Final = "gameplay_sessions"
"""The sessions' folder: one row per session, in the day the session started."""
WARM_DATASETS: Final = (EVENTS_DATASET, SESSIONS_DATASET)
"""The warm store's datasets (folders under the root); each has `analytics_player_id`."""
_ROW_GROUP_ROWS = 128_000
_TS = pa.timestamp("us", tz="UTC")

WARM_SCHEMA = pa.schema(
    [
        ("analytics_player_id", pa.string()),
        ("client_guid", pa.string()),
        ("seq", pa.int64()),
        ("event_name", pa.string()),
        ("category", pa.string()),
        ("event_ts", _TS),
        ("event_day", pa.date32()),
        ("received_at", _TS),
        ("session_id", pa.string()),
        ("schema_version", pa.string()),
        ("sample_rate", pa.float32()),
        ("build", pa.string()),
        ("platform", pa.string()),
        ("shard", pa.string()),
        ("region", pa.string()),
        ("country", pa.string()),
        ("latency_bucket", pa.string()),
        ("props", pa.string()),  # JSON text: DuckDB and Trino both parse it
        ("geo_region", pa.string()),
        ("envelope_id", pa.int64()),
        ("stream_seq", pa.int64()),
        ("stored_at", _TS),
        ("source", pa.string()),  # `client` | `server`; null in files written before it
    ]
)
"""The Parquet columns: the hot store's names, timestamps as UTC microseconds."""

_TIMESTAMPS = {f.name for f in WARM_SCHEMA if f.type == _TS}
_CSV_TYPES = {f.name: (pa.int64() if f.name in _TIMESTAMPS else f.type) for f in WARM_SCHEMA}
_SELECT = ", ".join(
    f"(extract(epoch FROM {f.name}) * 1000000)::bigint AS {f.name}"
    if f.name in _TIMESTAMPS
    else f"{f.name}::text AS {f.name}"
    if f.name in ("client_guid", "props")
    else f.name
    for f in WARM_SCHEMA
)


@dataclasses.dataclass(frozen=True, slots=True)
class ExportedDay:
    """One day written to the warm store: `full` from its partition, or `merge`d late rows."""

    day: dt.date
    rows: int
    bytes: int
    path: str
    mode: str


class WarmStore:
    """Daily Parquet files under `{root}/gameplay/`, on a local disk, MinIO or S3."""

    def __init__(
        self, root: str | ObjectRoot, *, endpoint: str | None = None, region: str | None = None
    ) -> None:
        self.root = (
            root
            if isinstance(root, ObjectRoot)
            else open_root(root, endpoint=endpoint, region=region)
        )  # no I/O here: the aggregator starts (not ready) even when the store is unreachable

    def check(self) -> None:
        """Create the store's folder (and an S3 bucket) if needed and list it; raises OSError
        when the store is unreachable or refuses. Blocking: callers on an event loop use
        `WarmStoreProbe`."""
        fs, base = self.root.filesystem, self.root.join(EVENTS_DATASET)
        fs.create_dir(base, recursive=True)
        fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))

    def __repr__(self) -> str:
        return f"WarmStore({self.root.uri!r})"

    def day_dir(self, day: dt.date, dataset: str = EVENTS_DATASET) -> str:
        return self.root.join(dataset, f"event_date={day.isoformat()}")

    def day_path(self, day: dt.date, dataset: str = EVENTS_DATASET) -> str:
        return f"{self.day_dir(day, dataset)}/{DATA_FILE}"

    def days(self, dataset: str = EVENTS_DATASET) -> list[dt.date]:
        """The days present in the dataset, oldest first."""
        selector = pafs.FileSelector(self.root.join(dataset), allow_not_found=True)
        found = []
        for info in self.root.filesystem.get_file_info(selector):
            name = info.base_name
            if info.type == pafs.FileType.Directory and name.startswith("event_date="):
                try:
                    found.append(dt.date.fromisoformat(name.removeprefix("event_date=")))
                except ValueError:
                    continue
        return sorted(found)

    def read_day(
        self, day: dt.date, dataset: str = EVENTS_DATASET, schema: pa.Schema = WARM_SCHEMA
    ) -> pa.Table | None:
        path = self.day_path(day, dataset)
        if self.root.filesystem.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=self.root.filesystem, schema=schema)

    def delete_day(self, day: dt.date, dataset: str = EVENTS_DATASET) -> None:
        info = self.root.filesystem.get_file_info(self.day_dir(day, dataset))
        if info.type == pafs.FileType.Directory:
            self.root.filesystem.delete_dir(self.day_dir(day, dataset))

    def write_day(
        self,
        day: dt.date,
        batches: Iterator[pa.RecordBatch],
        *,
        dataset: str = EVENTS_DATASET,
        schema: pa.Schema = WARM_SCHEMA,
    ) -> tuple[int, int]:
        """Replace the dataset's day with `batches`, atomically; returns (rows, bytes).
        Blocking."""
        fs, folder = self.root.filesystem, self.day_dir(day, dataset)
        final = f"{folder}/{DATA_FILE}"
        fs.create_dir(folder, recursive=True)
        # Locally a rename swaps the file whole; on S3 the object appears only once the
        # upload completes, so writing the final key directly is already atomic there.
        temp = f"{folder}/.{DATA_FILE}.tmp-{uuid.uuid4().hex}"  # readers skip dotfiles
        target = temp if self.root.is_local else final
        rows = 0
        try:
            with (
                fs.open_output_stream(target) as sink,
                pq.ParquetWriter(sink, schema, compression="zstd") as writer,
            ):
                pending: list[pa.RecordBatch] = []
                pending_rows = 0
                for batch in batches:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    if pending_rows >= _ROW_GROUP_ROWS:
                        writer.write_table(pa.Table.from_batches(pending, schema))
                        rows += pending_rows
                        pending, pending_rows = [], 0
                if pending or rows == 0:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    rows += pending_rows
            if target != final:
                fs.move(target, final)
        except BaseException:
            if target != final and fs.get_file_info(target).is_file:
                fs.delete_file(target)
            raise
        self._remove_strays(folder)
        return rows, fs.get_file_info(final).size or 0

    def _remove_strays(self, folder: str) -> None:
        # Anything else in the folder (a temp file of a crashed export) would be read twice.
        for info in self.root.filesystem.get_file_info(pafs.FileSelector(folder)):
            if info.is_file and info.base_name != DATA_FILE:
                self.root.filesystem.delete_file(info.path)

    async def export_day(
        self, pool: asyncpg.Pool, day: dt.date, *, at: dt.datetime | None = None
    ) -> ExportedDay | None:
        """Export one day from the hot store; None when the hot store holds nothing of it.

        From the day's partition when it exists (the hot store has the whole day: the file
        is replaced); otherwise the day's rows in the default partition are merged into the
        existing file and removed from Postgres. `at` is the export's time in the ledger
        (the maintenance clock; default the database's).
        """
        async with pool.acquire() as conn:
            has_partition = day in await partitions.partition_days(conn)
            with tempfile.TemporaryDirectory(prefix="warm-export-") as tmp:
                csv_path = os.path.join(tmp, "day.csv")
                if has_partition:
                    table = partitions.partition_name(day)
                    await conn.copy_from_query(
                        f"SELECT {_SELECT} FROM {table}", output=csv_path, format="csv",
                        header=True,
                    )  # fmt: skip
                    if await _trimmed(conn, day):  # the file holds rows Postgres no longer has
                        hot = pa.Table.from_batches(list(_read_csv(csv_path)), WARM_SCHEMA)
                        _, size = await asyncio.to_thread(self._merge_day, day, hot)
                        path = self.day_path(day)
                        return await _record(
                            conn, day, hot.num_rows, size, path, partitions.TRIMMED, at
                        )
                    rows, size = await asyncio.to_thread(self.write_day, day, _read_csv(csv_path))
                    if rows == 0:
                        return None
                    return await _record(conn, day, rows, size, self.day_path(day), "full", at)
                async with conn.transaction():
                    await conn.copy_from_query(
                        f"DELETE FROM {DEFAULT_PARTITION} WHERE event_day = "
                        f"'{day.isoformat()}'::date RETURNING {_SELECT}",
                        output=csv_path, format="csv", header=True,
                    )  # fmt: skip
                    late = pa.Table.from_batches(list(_read_csv(csv_path)), WARM_SCHEMA)
                    if late.num_rows == 0:
                        return None
                    rows, size = await asyncio.to_thread(self._merge_day, day, late)
                    return await _record(conn, day, rows, size, self.day_path(day), "merge", at)

    def _merge_day(self, day: dt.date, late: pa.Table) -> tuple[int, int]:
        existing = self.read_day(day)
        if existing is not None and existing.num_rows:
            late = late.filter(pc.invert(pc.is_in(_keys(late), value_set=_keys(existing))))
            merged = pa.concat_tables([existing, late])
        else:
            merged = late
        return self.write_day(day, iter(merged.to_batches()))


async def _trimmed(conn: asyncpg.Connection, day: dt.date) -> bool:
    mode = await conn.fetchval(f"SELECT mode FROM {EXPORTS_TABLE} WHERE event_day = $1", day)
    return bool(mode == partitions.TRIMMED)


def _keys(table: pa.Table) -> pa.Array:
    parts = [table[c].cast(pa.string()) for c in ("analytics_player_id", "client_guid", "seq")]
    return pc.binary_join_element_wise(*parts, "/")


def _read_csv(path: str) -> Iterator[pa.RecordBatch]:
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=8 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=_CSV_TYPES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # Postgres writes NULL bare, '' quoted
            null_values=[""],
        ),
    )
    for batch in reader:
        columns = [
            batch.column(f.name).cast(_TS) if f.name in _TIMESTAMPS else batch.column(f.name)
            for f in WARM_SCHEMA
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=WARM_SCHEMA)


async def _record(
    conn: asyncpg.Connection,
    day: dt.date,
    rows: int,
    size: int,
    path: str,
    mode: str,
    at: dt.datetime | None,
) -> ExportedDay:
    await conn.execute(
        f"INSERT INTO {EXPORTS_TABLE} (event_day, rows, bytes, path, mode, exported_at) "
        "VALUES ($1, $2, $3, $4, $5, coalesce($6, now())) ON CONFLICT (event_day) DO UPDATE "
        "SET rows = $2, bytes = $3, path = $4, mode = $5, exported_at = coalesce($6, now())",
        day, rows, size, path, mode, at,
    )  # fmt: skip
    log.info("exported %s: %d rows (%s) to %s", day, rows, mode, path)
    return ExportedDay(day, rows, size, path, mode)


def warm_cutoff(now: dt.datetime, retention_days: int) -> dt.date:
    """The oldest day the warm store keeps."""
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=retention_days)


async def export_closed_days(
    pool: asyncpg.Pool,
    store: WarmStore,
    *,
    now: dt.datetime,
    grace: dt.timedelta = dt.timedelta(hours=2),
    retention_days: int = 183,
    open_interval: dt.timedelta | None = None,
) -> list[ExportedDay]:
    """Export every closed day that the ledger lacks or whose hot rows changed since, and
    with `open_interval` the open days too (`warm_schedule.due_days`).

    A day is closed once it ended `grace` before `now` (late arrivals settle first). Days
    older than the warm retention are not exported: the retention would delete them. An open
    day is exported only from its own partition (the whole day so far, replacing the file):
    the merge path would delete its rows from the hot store while the day is still read there.
    """
    oldest = warm_cutoff(now, retention_days)
    async with pool.acquire() as conn:
        counts = await conn.fetch(
            f"SELECT event_day, count(*) AS n FROM {EVENTS_TABLE} "
            "WHERE event_day >= $1 GROUP BY event_day ORDER BY event_day",
            oldest,
        )
        ledger = {
            r["event_day"]: (r["rows"], r["exported_at"])
            for r in await conn.fetch(f"SELECT event_day, rows, exported_at FROM {EXPORTS_TABLE}")
        }
        with_partition = set(await partitions.partition_days(conn))
    first_open = warm_schedule.closed_before(now, grace)
    changed = {
        r["event_day"]: r["event_day"] not in with_partition
        or ledger.get(r["event_day"], (None,))[0] != r["n"]
        for r in counts
        if r["event_day"] < first_open or r["event_day"] in with_partition
    }
    due = warm_schedule.due_days(
        changed,
        {day: at for day, (_, at) in ledger.items()},
        now=now,
        grace=grace,
        open_interval=open_interval,
    )
    exported = []
    for day in due:
        done = await store.export_day(pool, day, at=now)
        if done is not None:
            exported.append(done)
    return exported


async def apply_warm_retention(
    pool: asyncpg.Pool, store: WarmStore, *, now: dt.datetime, retention_days: int
) -> list[dt.date]:
    """Delete the warm days older than the retention (events and sessions), and their
    ledger entries."""
    cutoff = warm_cutoff(now, retention_days)
    deleted: set[dt.date] = set()
    for dataset in WARM_DATASETS:
        for day in await asyncio.to_thread(store.days, dataset):  # S3 calls: off the loop
            if day < cutoff:
                await asyncio.to_thread(store.delete_day, day, dataset)
                deleted.add(day)
    async with pool.acquire() as conn:
        await conn.execute(f"DELETE FROM {EXPORTS_TABLE} WHERE event_day < $1", cutoff)
        await conn.execute(f"DELETE FROM {SESSION_EXPORTS_TABLE} WHERE start_day < $1", cutoff)
    return sorted(deleted)
