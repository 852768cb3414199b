"""DuckDB over the warm store: SQL on a laptop against the daily Parquet files.

`analytics_events` and `analytics_sessions` are views with the hot store's column names. A
local root is read by DuckDB directly; an S3/MinIO root through a lazy pyarrow dataset
registered in DuckDB, since DuckDB's httpfs extension is not part of the wheel and cannot be
installed offline.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root
from gameplay_analytics.runtime.storage.warm import EVENTS_DATASET, SESSIONS_DATASET, WARM_SCHEMA
from gameplay_analytics.runtime.storage.warm_sessions import SESSIONS_SCHEMA

__all__ = ["SESSIONS_VIEW", "VIEW", "connect", "query"]

VIEW = "analytics_events"
SESSIONS_VIEW = "analytics_sessions"


def connect(
    root: str | ObjectRoot,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    database: str = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `analytics_events` and `analytics_sessions` views over the
    warm store at `root` (`gameplay/` and `gameplay_sessions/`).

    An empty store gives empty views (with the right columns), not an error.
    """
    where = (
        root if isinstance(root, ObjectRoot) else open_root(root, endpoint=endpoint, region=region)
    )
    con = duckdb.connect(database)
    _create_view(con, where, EVENTS_DATASET, VIEW, WARM_SCHEMA)
    _create_view(con, where, SESSIONS_DATASET, SESSIONS_VIEW, SESSIONS_SCHEMA)
    return con


def _create_view(
    con: duckdb.DuckDBPyConnection,
    where: ObjectRoot,
    dataset: str,
    view: str,
    schema: pa.Schema,
) -> None:
    if where.is_local:
        if _has_files(where, dataset):
            pattern = where.join(dataset, "event_date=*", "*.parquet")
            literal = "'" + pattern.replace("'", "''") + "'"  # DDL takes no parameters
            files = f"read_parquet({literal}, hive_partitioning = false, union_by_name = true)"
            present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
            con.execute(f"CREATE VIEW {view} AS SELECT {_columns(schema, present)} FROM {files}")
            return
    else:
        dataset_ = _s3_dataset(where, dataset, schema)
        if dataset_ is not None:
            con.register(f"_warm_{dataset}", dataset_)
            columns = _columns(schema, set(dataset_.schema.names))  # the schema: all present
            con.execute(f"CREATE VIEW {view} AS SELECT {columns} FROM _warm_{dataset}")
            return
    con.register(f"_warm_{dataset}_empty", schema.empty_table())
    con.execute(f"CREATE VIEW {view} AS SELECT * FROM _warm_{dataset}_empty")


def query(
    root: str | ObjectRoot,
    sql: str,
    params: list[Any] | None = None,
    *,
    endpoint: str | None = None,
    region: str | None = None,
) -> list[tuple[Any, ...]]:
    """Run one SQL statement against the warm store and return its rows."""
    con = connect(root, endpoint=endpoint, region=region)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _columns(schema: pa.Schema, present: set[str]) -> str:
    """The view's select list: a column no file has yet (files written before it was
    added, such as `source`) is a typed null, so every query sees the same columns."""
    return ", ".join(
        f.name if f.name in present else f"CAST(NULL AS VARCHAR) AS {f.name}"
        if pa.types.is_string(f.type) else f"NULL AS {f.name}"
        for f in schema
    )  # fmt: skip


def _has_files(where: ObjectRoot, dataset: str) -> bool:
    from pyarrow import fs as pafs

    selector = pafs.FileSelector(where.join(dataset), recursive=True, allow_not_found=True)
    return any(i.is_file and i.base_name.endswith(".parquet")
               for i in where.filesystem.get_file_info(selector))  # fmt: skip


def _s3_dataset(where: ObjectRoot, dataset: str, schema: pa.Schema) -> pads.Dataset | None:
    if not _has_files(where, dataset):
        return None
    return pads.dataset(
        where.join(dataset),
        filesystem=where.filesystem,
        format="parquet",
        schema=schema,
        exclude_invalid_files=True,
    )
