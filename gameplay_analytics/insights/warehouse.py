"""DuckDB over the warm store: SQL on a laptop against the daily Parquet files.

`analytics_events` is a view with the hot store's column names. A local root is read by
DuckDB directly; an S3/MinIO root through a lazy pyarrow dataset registered in DuckDB, since
DuckDB's httpfs extension is not part of the wheel and cannot be installed offline.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root
from gameplay_analytics.runtime.storage.warm import WARM_SCHEMA

__all__ = ["VIEW", "connect", "query"]

VIEW = "analytics_events"


def connect(
    root: str | ObjectRoot,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    database: str = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the `analytics_events` view over the warm store at `root`.

    An empty store gives an empty view (with the right columns), not an error.
    """
    where = (
        root if isinstance(root, ObjectRoot) else open_root(root, endpoint=endpoint, region=region)
    )
    con = duckdb.connect(database)
    if where.is_local:
        pattern = where.join("gameplay", "event_date=*", "*.parquet")
        if _has_files(where):
            literal = "'" + pattern.replace("'", "''") + "'"  # DDL takes no parameters
            files = f"read_parquet({literal}, hive_partitioning = false, union_by_name = true)"
            present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
            con.execute(f"CREATE VIEW {VIEW} AS SELECT {_columns(present)} FROM {files}")
            return con
    else:
        dataset = _s3_dataset(where)
        if dataset is not None:
            con.register("_warm_dataset", dataset)
            columns = _columns(set(dataset.schema.names))  # WARM_SCHEMA: all present
            con.execute(f"CREATE VIEW {VIEW} AS SELECT {columns} FROM _warm_dataset")
            return con
    con.register("_warm_empty", WARM_SCHEMA.empty_table())
    con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM _warm_empty")
    return con


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


def _columns(present: set[str]) -> str:
    """The view's select list: a column no file has yet (files written before it was
    added, such as `source`) is a typed null, so every query sees the same columns."""
    return ", ".join(
        f.name if f.name in present else f"CAST(NULL AS VARCHAR) AS {f.name}"
        if pa.types.is_string(f.type) else f"NULL AS {f.name}"
        for f in WARM_SCHEMA
    )  # fmt: skip


def _has_files(where: ObjectRoot) -> bool:
    from pyarrow import fs as pafs

    selector = pafs.FileSelector(where.join("gameplay"), recursive=True, allow_not_found=True)
    return any(i.is_file and i.base_name.endswith(".parquet")
               for i in where.filesystem.get_file_info(selector))  # fmt: skip


def _s3_dataset(where: ObjectRoot) -> pads.Dataset | None:
    if not _has_files(where):
        return None
    return pads.dataset(
        where.join("gameplay"),
        filesystem=where.filesystem,
        format="parquet",
        schema=WARM_SCHEMA,
        exclude_invalid_files=True,
    )
