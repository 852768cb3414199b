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

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from gameplay_analytics.runtime.storage import partitions
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root
from gameplay_analytics.runtime.storage.schema import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    EXPORTS_TABLE,
)

__all__ = [
    "DATA_FILE",
    "WARM_SCHEMA",
    "ExportedDay",
    "WarmStore",
    "WarmStoreProbe",
    "apply_warm_retention",
    "export_closed_days",
]

log = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
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
        fs, base = self.root.filesystem, self.root.join("gameplay")
        fs.create_dir(base, recursive=True)
        fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))

    def __repr__(self) -> str:
        return f"WarmStore({self.root.uri!r})"

    def day_dir(self, day: dt.date) -> str:
        return self.root.join("gameplay", f"event_date={day.isoformat()}")

    def day_path(self, day: dt.date) -> str:
        return f"{self.day_dir(day)}/{DATA_FILE}"

    def days(self) -> list[dt.date]:
        """The days present in the store, oldest first."""
        selector = pafs.FileSelector(self.root.join("gameplay"), allow_not_found=True)
        found = []
        for info in self.root.filesystem.get_file_info(selector):
            name = info.base_name
            if info.type == pafs.FileType.Directory and name.startswith("event_date="):
                try:
                    found.append(dt.date.fromisoformat(name.removeprefix("event_date=")))
                except ValueError:
                    continue
        return sorted(found)

    def read_day(self, day: dt.date) -> pa.Table | None:
        path = self.day_path(day)
        if self.root.filesystem.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=self.root.filesystem, schema=WARM_SCHEMA)

    def delete_day(self, day: dt.date) -> None:
        info = self.root.filesystem.get_file_info(self.day_dir(day))
        if info.type == pafs.FileType.Directory:
            self.root.filesystem.delete_dir(self.day_dir(day))

    def write_day(self, day: dt.date, batches: Iterator[pa.RecordBatch]) -> tuple[int, int]:
        """Replace the day with `batches`, atomically; returns (rows, bytes). Blocking."""
        fs, final = self.root.filesystem, self.day_path(day)
        fs.create_dir(self.day_dir(day), recursive=True)
        # Locally a rename swaps the file whole; on S3 the object appears only once the
        # upload completes, so writing the final key directly is already atomic there.
        temp = f"{self.day_dir(day)}/.{DATA_FILE}.tmp-{uuid.uuid4().hex}"  # readers skip dotfiles
        target = temp if self.root.is_local else final
        rows = 0
        try:
            with (
                fs.open_output_stream(target) as sink,
                pq.ParquetWriter(sink, WARM_SCHEMA, compression="zstd") as writer,
            ):
                pending: list[pa.RecordBatch] = []
                pending_rows = 0
                for batch in batches:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    if pending_rows >= _ROW_GROUP_ROWS:
                        writer.write_table(pa.Table.from_batches(pending, WARM_SCHEMA))
                        rows += pending_rows
                        pending, pending_rows = [], 0
                if pending or rows == 0:
                    writer.write_table(pa.Table.from_batches(pending, WARM_SCHEMA))
                    rows += pending_rows
            if target != final:
                fs.move(target, final)
        except BaseException:
            if target != final and fs.get_file_info(target).is_file:
                fs.delete_file(target)
            raise
        self._remove_strays(day)
        return rows, fs.get_file_info(final).size or 0

    def _remove_strays(self, day: dt.date) -> None:
        # Anything else in the folder (a temp file of a crashed export) would be read twice.
        selector = pafs.FileSelector(self.day_dir(day))
        for info in self.root.filesystem.get_file_info(selector):
            if info.is_file and info.base_name != DATA_FILE:
                self.root.filesystem.delete_file(info.path)

    async def export_day(self, pool: asyncpg.Pool, day: dt.date) -> ExportedDay | None:
        """Export one day from the hot store; None when the hot store holds nothing of it.

        From the day's partition when it exists (the hot store has the whole day: the file
        is replaced); otherwise the day's rows in the default partition are merged into the
        existing file and removed from Postgres.
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
                            conn, day, hot.num_rows, size, path, partitions.TRIMMED
                        )
                    rows, size = await asyncio.to_thread(self.write_day, day, _read_csv(csv_path))
                    if rows == 0:
                        return None
                    return await _record(conn, day, rows, size, self.day_path(day), "full")
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
                    return await _record(conn, day, rows, size, self.day_path(day), "merge")

    def _merge_day(self, day: dt.date, late: pa.Table) -> tuple[int, int]:
        existing = self.read_day(day)
        if existing is not None and existing.num_rows:
            late = late.filter(pc.invert(pc.is_in(_keys(late), value_set=_keys(existing))))
            merged = pa.concat_tables([existing, late])
        else:
            merged = late
        return self.write_day(day, iter(merged.to_batches()))


class WarmStoreProbe:
    """Whether the warm store answers, for `/readyz`: checked off the event loop, every
    `interval_s` until it answers and every `healthy_interval_s` afterwards. `problem` is
    None when the last check passed, else the reason (the aggregator is then not ready, and
    keeps storing to Postgres; the export catches up once the store is back)."""

    def __init__(
        self,
        store: WarmStore,
        *,
        timeout_s: float = 30.0,
        interval_s: float = 5.0,
        healthy_interval_s: float = 60.0,
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._interval_s, self._healthy_interval_s = interval_s, healthy_interval_s
        self.problem: str | None = f"warm store {store.root.uri} not checked yet"

    async def check_once(self) -> str | None:
        problem: str | None = None
        try:
            await asyncio.wait_for(asyncio.to_thread(self._store.check), self._timeout_s)
        except TimeoutError:
            problem = f"warm store {self._store.root.uri}: no answer in {self._timeout_s:g}s"
        except (OSError, ValueError) as err:  # pyarrow raises OSError for S3 errors
            problem = f"warm store {self._store.root.uri}: {str(err).splitlines()[0][:300]}"
        if problem != self.problem:
            if problem is None:
                log.info("warm store %s reachable", self._store.root.uri)
            else:
                log.warning("%s (not ready until it answers)", problem)
        self.problem = problem
        return problem

    async def run(self) -> None:
        while True:
            problem = await self.check_once()
            await asyncio.sleep(self._interval_s if problem else self._healthy_interval_s)


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
    conn: asyncpg.Connection, day: dt.date, rows: int, size: int, path: str, mode: str
) -> ExportedDay:
    await conn.execute(
        f"INSERT INTO {EXPORTS_TABLE} (event_day, rows, bytes, path, mode) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_day) DO UPDATE SET rows = $2, "
        "bytes = $3, path = $4, mode = $5, exported_at = now()",
        day, rows, size, path, mode,
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
) -> list[ExportedDay]:
    """Export every closed day that the ledger lacks or whose hot rows changed since.

    A day is closed once it ended `grace` before `now` (late arrivals settle first). Days
    older than the warm retention are not exported: the retention would delete them.
    """
    closed_before = (now - grace).astimezone(dt.UTC).date()
    oldest = warm_cutoff(now, retention_days)
    async with pool.acquire() as conn:
        counts = await conn.fetch(
            f"SELECT event_day, count(*) AS n FROM {EVENTS_TABLE} "
            "WHERE event_day < $1 AND event_day >= $2 GROUP BY event_day ORDER BY event_day",
            closed_before, oldest,
        )  # fmt: skip
        ledger = {
            r["event_day"]: r["rows"]
            for r in await conn.fetch(f"SELECT event_day, rows FROM {EXPORTS_TABLE}")
        }
        with_partition = set(await partitions.partition_days(conn))
    exported = []
    for row in counts:
        day = row["event_day"]
        if day in with_partition and ledger.get(day) == row["n"]:
            continue
        done = await store.export_day(pool, day)
        if done is not None:
            exported.append(done)
    return exported


async def apply_warm_retention(
    pool: asyncpg.Pool, store: WarmStore, *, now: dt.datetime, retention_days: int
) -> list[dt.date]:
    """Delete the warm days older than the retention, and their ledger entries."""
    cutoff = warm_cutoff(now, retention_days)
    deleted = [day for day in store.days() if day < cutoff]
    for day in deleted:
        await asyncio.to_thread(store.delete_day, day)
    async with pool.acquire() as conn:
        await conn.execute(f"DELETE FROM {EXPORTS_TABLE} WHERE event_day < $1", cutoff)
    return deleted
