"""The stakeholder feed: every metric as CSV and Parquet, with a manifest (Looker Studio & co).

`export` runs each metric through `core.compute` (the definitions, never a copy) and writes
`<metric>.csv` and `<metric>.parquet` into a folder or an `s3://` prefix, then
`manifest.json`, last, so a reader that sees the manifest sees complete files. The CSV is the
one `insights METRIC --format csv` prints: a header of PROTOCOL.md §6 column names, raw values,
an empty cell for null. The manifest states, per metric: its params, row count, columns, and
the sha256 and size of each file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from gameplay_analytics.insights import core, definitions, render
from gameplay_analytics.insights.stores import Store
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot

__all__ = ["FEED_VERSION", "MANIFEST", "export", "parquet_bytes"]

MANIFEST: Final = "manifest.json"
FEED_VERSION: Final = 1
"""Bumped when a file's contract (names, columns' meaning) changes."""


def parquet_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """The rows as one Parquet file; a column a row lacks is null there."""
    names = render.columns(rows)
    table = pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows])
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def export(
    store: Store,
    params: core.Params,
    where: ObjectRoot,
    *,
    metrics: Sequence[str] = tuple(definitions.METRICS),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write the feed for `metrics` under `where`; return the manifest it wrote."""
    where.filesystem.create_dir(where.base, recursive=True)
    entries = []
    for metric in metrics:
        result = core.compute(metric, store, params)
        files = {
            "csv": render.rows_as_csv(result.rows).encode("utf-8"),
            "parquet": parquet_bytes(result.rows),
        }
        written = {}
        for kind, data in files.items():
            name = f"{metric}.{kind}"
            _write(where, name, data)
            written[kind] = {
                "path": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        entries.append(
            {
                "metric": metric,
                "params": result.params,
                "rows": len(result.rows),
                "columns": render.columns(result.rows),
                "estimator": definitions.METRICS[metric].estimator,
                "files": written,
            }
        )
    manifest = {
        "feed_version": FEED_VERSION,
        "generated_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "metrics": entries,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _write(where, MANIFEST, text.encode("utf-8"))
    return manifest


def _write(where: ObjectRoot, name: str, data: bytes) -> None:
    with where.filesystem.open_output_stream(where.join(name)) as out:
        out.write(data)
