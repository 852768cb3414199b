"""The aggregator's configuration: one pydantic-settings model, `GAMEPLAY_ANALYTICS_*`.

The operator renders these environment variables; every field has a default that suits the
local stack. S3 credentials are not here: the standard AWS variables or role supply them. No
salt, profile secret or GeoIP database either: messages arrive pseudonymised (the gateway's
settings hold those, docs/governance/privacy.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gameplay_analytics.contract.natsnames import ENV_PREFIX, PipelineNames
from gameplay_analytics.runtime.aggregator.enrich import DEFAULT_MAX_CLOCK_SKEW, TimeBounds
from gameplay_analytics.runtime.aggregator.retry import Backoff
from gameplay_analytics.runtime.jetstream import NatsSettings
from gameplay_analytics.runtime.storage.maintenance import OPEN_EXPORT_INTERVAL, MaintenancePolicy

__all__ = ["AggregatorSettings"]


class AggregatorSettings(NatsSettings):
    """Everything one aggregator replica needs to know; env names in the descriptions.

    NATS URL, credentials and the pipeline's stream, subjects and bucket: `NatsSettings`.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    postgres_dsn: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/analytics",
        description="POSTGRES_DSN: the hot store",
    )
    warehouse_root: str | None = Field(
        default=None,
        description="WAREHOUSE_ROOT: local path or s3://bucket/prefix of the warm store; "
        "unset disables the export (the hot retention then drops days unexported)",
    )
    s3_endpoint: str | None = Field(
        default=None, description="S3_ENDPOINT: e.g. http://minio:9000; unset means AWS S3"
    )
    s3_region: str | None = Field(default=None, description="S3_REGION: default us-east-1")
    batch_size: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="BATCH_SIZE: most JetStream messages in one batch (one transaction); what "
        "arrives while a batch commits is fetched meanwhile and committed next, up to this",
    )
    fetch_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="FETCH_TIMEOUT_S: how long an idle fetch waits for a first message (a "
        "fetch returns as soon as messages are there, so this adds no latency)",
    )
    metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="METRICS_PORT: /metrics /healthz /readyz (0: any)"
    )
    hot_retention_hours: float = Field(
        default=48.0,
        gt=0,
        description="HOT_RETENTION_HOURS: a day partition is dropped this long "
        "after the day ended (and only once exported)",
    )
    warm_retention_days: int = Field(
        default=183,
        ge=1,
        description="WARM_RETENTION_DAYS: Parquet days older than this are deleted",
    )
    export_grace_hours: float = Field(
        default=2.0,
        ge=0,
        description="EXPORT_GRACE_HOURS: wait for late events this long after a "
        "day ends before exporting it",
    )
    open_export_interval_s: float = Field(
        default=OPEN_EXPORT_INTERVAL.total_seconds(),
        ge=0,
        description="OPEN_EXPORT_INTERVAL_S: the open day (today, and yesterday within the "
        "grace) is re-exported to the warm store this often, checked every maintenance pass; "
        "0 exports closed days only",
    )
    max_clock_skew_s: float = Field(
        default=DEFAULT_MAX_CLOCK_SKEW.total_seconds(),
        gt=0,
        description="MAX_CLOCK_SKEW_S: an event stamped further ahead of the gateway's clock "
        "goes to the DLQ (clock_skew); one older than WARM_RETENTION_DAYS goes there as too_old",
    )
    consumer_name: str = Field(
        default=PipelineNames().consumer,
        description="CONSUMER_NAME: durable consumer shared by all replicas",
    )
    sampling_file: Path | None = Field(
        default=None, description="SAMPLING_FILE: cold-start copy of the KV `sampling` value"
    )
    schemas_file: Path | None = Field(
        default=None, description="SCHEMAS_FILE: cold-start copy of the KV `schemas` value"
    )
    # Extras beyond the operator's list, all with defaults it need not render.
    ack_wait_s: float = Field(
        default=30.0, gt=0, description="ACK_WAIT_S: redelivery delay of an unacked message"
    )
    maintenance_interval_s: float = Field(
        default=300.0, gt=0, description="MAINTENANCE_INTERVAL_S: partitions, export and retention"
    )
    partitions_ahead_days: int = Field(
        default=2, ge=0, le=30, description="PARTITIONS_AHEAD_DAYS: day partitions created ahead"
    )
    retry_base_s: float = Field(default=0.2, gt=0, description="RETRY_BASE_S: first retry delay")
    retry_max_s: float = Field(default=10.0, gt=0, description="RETRY_MAX_S: longest retry delay")
    shutdown_timeout_s: float = Field(
        default=20.0, gt=0, description="SHUTDOWN_TIMEOUT_S: how long SIGTERM waits for the batch"
    )
    pool_size: int = Field(default=4, ge=2, le=64, description="POOL_SIZE: Postgres connections")
    lag_interval_s: float = Field(
        default=5.0, gt=0, description="LAG_INTERVAL_S: how often consumer lag is read"
    )
    payload_log_rate: float = Field(
        default=0.001,
        ge=0,
        le=1,
        description="PAYLOAD_LOG_RATE: fraction of stored messages logged, redacted "
        "(runtime/aggregator/payload_log.py); 0 logs none",
    )
    command_timeout_s: float = Field(
        default=60.0, gt=0, description="COMMAND_TIMEOUT_S: bound on one Postgres statement"
    )
    dlq_publish_timeout_s: float = Field(
        default=5.0, gt=0, description="DLQ_PUBLISH_TIMEOUT_S: bound on one DLQ publish ack"
    )
    close_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="CLOSE_TIMEOUT_S: how long close() waits for acks to go out, and for "
        "the Postgres pool to close",
    )

    fault_commit_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="FAULT_COMMIT_RATE: TEST ONLY (tests/chaos), never set in production: the "
        "chance that a batch's commit raises an injected fault before storing, after storing "
        "or halfway through the acks (committer.InjectedFault); 0 injects none",
    )

    def backoff(self) -> Backoff:
        """A fresh backoff for one retried operation (RETRY_BASE_S doubling to RETRY_MAX_S)."""
        return Backoff(self.retry_base_s, self.retry_max_s)

    def time_bounds(self) -> TimeBounds:
        return TimeBounds(
            max_skew=dt.timedelta(seconds=self.max_clock_skew_s),
            retention_days=self.warm_retention_days,
        )

    def names(self) -> PipelineNames:
        return PipelineNames(
            stream=self.stream,
            events_subject=self.events_subject,
            dlq_subject=self.dlq_subject,
            config_bucket=self.config_bucket,
            consumer=self.consumer_name,
        )

    def maintenance_policy(self) -> MaintenancePolicy:
        return MaintenancePolicy(
            partitions_ahead_days=self.partitions_ahead_days,
            hot_retention=dt.timedelta(hours=self.hot_retention_hours),
            warm_retention_days=self.warm_retention_days,
            export_grace=dt.timedelta(hours=self.export_grace_hours),
            open_export_interval=(
                dt.timedelta(seconds=self.open_export_interval_s)
                if self.open_export_interval_s
                else None
            ),
        )
