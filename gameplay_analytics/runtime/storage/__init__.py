"""Storage: the Postgres hot store (schema, partitions, bulk writes) and the Parquet warm
store (daily export, retention) behind pyarrow filesystems.
"""

from gameplay_analytics.runtime.storage.hot import EventRow, SessionUpdate, WriteResult, write_batch
from gameplay_analytics.runtime.storage.maintenance import (
    MaintenancePolicy,
    MaintenanceReport,
    prepare_partitions,
    run_maintenance,
)
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root
from gameplay_analytics.runtime.storage.partitions import (
    RetentionReport,
    apply_hot_retention,
    ensure_partitions,
    partition_days,
    partition_name,
)
from gameplay_analytics.runtime.storage.schema import EVENT_COLUMNS, migrate
from gameplay_analytics.runtime.storage.warm import (
    WARM_SCHEMA,
    ExportedDay,
    WarmStore,
    apply_warm_retention,
    export_closed_days,
)

__all__ = [
    "EVENT_COLUMNS",
    "WARM_SCHEMA",
    "EventRow",
    "ExportedDay",
    "MaintenancePolicy",
    "MaintenanceReport",
    "ObjectRoot",
    "RetentionReport",
    "SessionUpdate",
    "WarmStore",
    "WriteResult",
    "apply_hot_retention",
    "apply_warm_retention",
    "ensure_partitions",
    "export_closed_days",
    "migrate",
    "open_root",
    "partition_days",
    "partition_name",
    "prepare_partitions",
    "run_maintenance",
    "write_batch",
]
