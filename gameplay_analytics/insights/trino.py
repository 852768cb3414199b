"""Trino over the warm store: the Hive catalog, the external table's DDL, the partition sync,
and every metric in Trino SQL, all generated here into `analytics/trino/`.

Nothing is written twice: the tables' columns are `WARM_SCHEMA` and `SESSIONS_SCHEMA` (the
Parquet files' own schemas), their locations and partition key the warm store's layout
(`{root}/gameplay[_sessions]/event_date=YYYY-MM-DD/data.parquet`), and each metric's query is its
definition rendered for DuckDB (`core.whole_store_sql`) and transpiled to Trino by sqlglot, over the
whole store and every slice, like the Metabase views. Regenerate after a change:
`python -m gameplay_analytics.insights.trino` (a test fails while the files are stale).

Trino cannot run on the development machines: the statements are parsed (sqlglot, trino
dialect) and the metrics' Trino SQL transpiled back to DuckDB runs on real Parquet in tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from gameplay_analytics.insights import core, definitions, generated
from gameplay_analytics.insights.dialect import Dialect
from gameplay_analytics.runtime.storage.warm import EVENTS_DATASET, SESSIONS_DATASET, WARM_SCHEMA
from gameplay_analytics.runtime.storage.warm_sessions import SESSIONS_SCHEMA

__all__ = [
    "CATALOG",
    "FOLDER",
    "PARTITION",
    "SCHEMA",
    "SESSIONS_TABLE",
    "TABLE",
    "TABLES",
    "catalog_properties",
    "create_statements",
    "files",
    "from_duckdb",
    "metric_sql",
    "sync_statements",
]

CATALOG: Final = "hive"
SCHEMA: Final = "gameplay"
TABLE: Final = "analytics_events"
"""The name the metric definitions read, so their SQL runs unchanged in schema `gameplay`."""
SESSIONS_TABLE: Final = "analytics_sessions"
"""The exported sessions (`gameplay_sessions/`), by the day each session started."""
TABLES: Final = (
    (TABLE, EVENTS_DATASET, WARM_SCHEMA),
    (SESSIONS_TABLE, SESSIONS_DATASET, SESSIONS_SCHEMA),
)
"""Each external table, its warm-store folder and its Parquet schema."""
PARTITION: Final = "event_date"
"""The warm store's directory key (`event_date=YYYY-MM-DD`), a varchar partition in Hive."""
FOLDER: Final = Path("analytics/trino")
LOCATION_PLACEHOLDER: Final = "s3://WAREHOUSE-BUCKET/PREFIX"


def _trino_type(field: pa.Field) -> str:
    kind = field.type
    if pa.types.is_string(kind):
        return "varchar"
    if pa.types.is_int64(kind):
        return "bigint"
    if pa.types.is_float32(kind):
        return "real"
    if pa.types.is_float64(kind):
        return "double"
    if pa.types.is_date32(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp(6)"  # UTC instants; see hive.parquet.time-zone in the catalog
    raise ValueError(f"no Trino type for warm column {field.name}: {kind}")


def catalog_properties(
    metastore: str = "thrift://hive-metastore:9083",
    *,
    s3_endpoint: str = "http://minio:9000",
    s3_region: str = "us-east-1",
) -> str:
    """`etc/catalog/hive.properties`: Hive connector on Parquet in S3/MinIO. The chart renders
    the same text as a ConfigMap (`trino.catalog` values; tests/chart/test_trino_catalog.py);
    an empty `s3_endpoint` is AWS S3."""
    endpoint = (
        "# MinIO or another S3-compatible store (credentials from the environment):\n"
        f"s3.endpoint={s3_endpoint}\ns3.path-style-access=true\n"
        if s3_endpoint
        else "# AWS S3 (credentials from the environment or the instance's role).\n"
    )
    return f"""\
# Trino catalog `{CATALOG}` over the warm store (generated: gameplay_analytics/insights/trino.py).
connector.name=hive
hive.metastore.uri={metastore}
# Microsecond UTC timestamps, as the warm store writes them.
hive.timestamp-precision=MICROSECONDS
hive.parquet.time-zone=UTC
# External tables over the exporter's files; partitions are registered by the sync call.
hive.non-managed-table-writes-enabled=false
hive.allow-register-partition-procedure=true
fs.native-s3.enabled=true
{endpoint}s3.region={s3_region}
"""


def create_statements(location: str = LOCATION_PLACEHOLDER) -> list[str]:
    """The schema and a partitioned external table over each dataset, `{location}/gameplay/`
    and `{location}/gameplay_sessions/`."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{SCHEMA}"]
    for table, dataset, schema in TABLES:
        columns = ",\n".join(f"  {f.name} {_trino_type(f)}" for f in schema)
        out.append(
            f"CREATE TABLE IF NOT EXISTS {CATALOG}.{SCHEMA}.{table} (\n{columns},\n"
            f"  {PARTITION} varchar\n)\nWITH (\n  external_location = '{location}/{dataset}',"
            f"\n  format = 'PARQUET',\n  partitioned_by = ARRAY['{PARTITION}']\n)"
        )
    return out


def sync_statements() -> list[str]:
    """Register the days the exporter added (and forget removed ones), for each table: run
    after each export (the open day's folder appears once, then only its file changes)."""
    return [
        f"CALL {CATALOG}.system.sync_partition_metadata('{SCHEMA}', '{table}', 'FULL')"
        for table, _, _ in TABLES
    ]


def metric_sql(metric: str, *, window: int = core.DEFAULT_WINDOW_DAYS) -> str:
    """`metric` in Trino SQL: its warm-store definition over the whole store, every slice."""
    return from_duckdb(core.whole_store_sql(metric, Dialect.DUCKDB, window=window))


def from_duckdb(sql: str) -> str:
    """One DuckDB statement of the definitions' kind as Trino SQL (sqlglot, plus the day
    arithmetic Trino spells with date_diff/date_add)."""
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb").transform(_day_arithmetic)
    return str(tree.sql(dialect="trino", pretty=True))


def _day_arithmetic(node: Any) -> Any:
    # Postgres and DuckDB subtract dates to whole days and add days to a date as integers;
    # Trino needs date_diff/date_add. The definitions' day columns all end in `_day`.
    from sqlglot import exp

    def is_day(side: Any) -> bool:
        return isinstance(side, exp.Column) and side.name.endswith("_day")

    if isinstance(node, exp.Sub) and is_day(node.left) and is_day(node.right):
        return exp.DateDiff(this=node.left, expression=node.right, unit=exp.var("DAY"))
    if isinstance(node, exp.Add) and is_day(node.left) and not is_day(node.right):
        return exp.DateAdd(this=node.left, expression=node.right, unit=exp.var("DAY"))
    return node


def files() -> dict[str, str]:
    """Every generated file under `FOLDER`, by its relative path."""
    header = f"-- generated by gameplay_analytics/insights/trino.py; run in {CATALOG}.{SCHEMA}\n"
    out = {
        "catalog/hive.properties": catalog_properties(),
        "ddl.sql": header + ";\n\n".join(create_statements()) + ";\n",
        "sync_partitions.sql": header + ";\n".join(sync_statements()) + ";\n",
    }
    for metric in definitions.METRICS:
        estimator = definitions.METRICS[metric].estimator
        out[f"metrics/{metric}.sql"] = (
            header + f"-- insights metric '{metric}', every slice, whole store. {estimator}\n"
            f"{metric_sql(metric)};\n"
        )
    return out


def main(root: Path = Path(".")) -> None:
    generated.write(FOLDER, files(), root)


if __name__ == "__main__":
    main()
