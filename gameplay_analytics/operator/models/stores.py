"""AnalyticsPipeline: where the pipeline keeps its data (NATS, Postgres, the warm store)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from gameplay_analytics.contract import natsnames
from gameplay_analytics.operator.models.base import NATS_NAME, NATS_SUBJECT, Spec, cel_rules
from gameplay_analytics.operator.models.refs import LocalObjectRef, SecretKeyRef
from gameplay_analytics.operator.models.security import NatsTLSSpec, PostgresTLSSpec

__all__ = ["NatsSpec", "NatsUsersSpec", "ObjectStoreSpec", "PostgresSpec", "WarmVolumeSpec"]

_USER_SECRET = "a Secret with keys `user` and `password`"


class NatsUsersSpec(Spec):
    """One least-privilege NATS user per component (`gameplay-analytics nats-permissions`
    renders their server-side permissions), each from its own Secret."""

    gateway: LocalObjectRef | None = Field(default=None, description=f"{_USER_SECRET}: gateways")
    aggregator: LocalObjectRef | None = Field(
        default=None, description=f"{_USER_SECRET}: aggregators"
    )
    operator: LocalObjectRef | None = Field(
        default=None, description=f"{_USER_SECRET}: the operator (stream, buckets, rules)"
    )
    quality: LocalObjectRef | None = Field(
        default=None, description=f"{_USER_SECRET}: the nightly quality CronJob"
    )


class NatsSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!(has(self.credentialsSecretRef) && has(self.users))",
                "set credentialsSecretRef or users, not both",
            )
        )
    )

    url: str = Field(default="nats://nats:4222", pattern=r"^(nats|tls)://", description="NATS URL")
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="a NATS .creds file; none for an unauthenticated server"
    )
    users: NatsUsersSpec | None = Field(
        default=None,
        description="user/password per component from Secrets (instead of credentialsSecretRef)",
    )
    stream_replicas: int = Field(
        default=natsnames.DEFAULT_REPLICAS,
        ge=1,
        le=5,
        description="JetStream replicas (R3 in prod)",
    )
    duplicate_window_seconds: int = Field(
        default=natsnames.DEFAULT_DUPLICATE_WINDOW_S,
        ge=1,
        le=86400,
        description="Nats-Msg-Id window",
    )
    max_age_hours: int = Field(
        default=natsnames.DEFAULT_MAX_AGE_S // 3600,
        ge=1,
        le=8760,
        description="how long the stream keeps data",
    )
    max_bytes: int = Field(
        default=natsnames.DEFAULT_MAX_BYTES, ge=-1, description="stream size cap; -1 unlimited"
    )
    # Per-pipeline names: unset, each is derived from the pipeline's namespace and name, so
    # pipelines sharing a NATS never share a stream, subjects, bucket or consumer.
    stream: str | None = Field(
        default=None, pattern=NATS_NAME, max_length=200, description="default ANALYTICS_<ns>_<name>"
    )
    events_subject: str | None = Field(
        default=None,
        pattern=NATS_SUBJECT,
        max_length=200,
        description="default analytics.<ns>.<name>.events",
    )
    dlq_subject: str | None = Field(
        default=None,
        pattern=NATS_SUBJECT,
        max_length=200,
        description="default analytics.<ns>.<name>.dlq",
    )
    config_bucket: str | None = Field(
        default=None,
        pattern=NATS_NAME,
        max_length=200,
        description="KV bucket of rules and schemas; default analytics-config_<ns>_<name>",
    )
    consumer: str | None = Field(
        default=None,
        pattern=NATS_NAME,
        max_length=200,
        description="the aggregators' durable consumer; default aggregator",
    )
    tls: NatsTLSSpec | None = Field(
        default=None, description="TLS to NATS: the CA (and client certificate) from a Secret"
    )


class PostgresSpec(Spec):
    dsn_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-postgres", key="dsn"),
        description="Secret key holding the hot store's DSN",
    )
    tls: PostgresTLSSpec | None = Field(
        default=None, description="TLS to Postgres: sslmode and the CA from a Secret"
    )


class ObjectStoreSpec(Spec):
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://", description="S3 API endpoint (MinIO); none for AWS S3"
    )
    bucket: str = Field(default="gameplay-analytics", min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=256, description="key prefix inside the bucket")
    credentials_secret_ref: LocalObjectRef = Field(
        default_factory=lambda: LocalObjectRef(name="analytics-object-store"),
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )


class WarmVolumeSpec(Spec):
    claim_name: str = Field(
        min_length=1, max_length=253, description="PVC the aggregators write Parquet to"
    )
