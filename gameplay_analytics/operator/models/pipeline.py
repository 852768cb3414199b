"""The AnalyticsPipeline spec: its sections and the retention, privacy and monitoring ones."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from gameplay_analytics.operator.models.base import Spec, cel_rules
from gameplay_analytics.operator.models.network import NetworkPolicySpec
from gameplay_analytics.operator.models.refs import LocalObjectRef, SecretKeyRef
from gameplay_analytics.operator.models.stores import (
    NatsSpec,
    ObjectStoreSpec,
    PostgresSpec,
    WarmVolumeSpec,
)
from gameplay_analytics.operator.models.workloads import AggregatorSpec, GatewaySpec

__all__ = [
    "AnalyticsPipelineSpec",
    "DailyInsightsSpec",
    "GeoIPSpec",
    "MonitoringSpec",
    "PrivacySpec",
    "RetentionSpec",
]


class RetentionSpec(Spec):
    hot_hours: int = Field(default=48, ge=1, le=8760, description="Postgres partitions kept")
    warm_days: int = Field(default=183, ge=1, le=3650, description="Parquet kept (6 months)")


class GeoIPSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "has(self.claimName) != has(self.configMapName)",
                "set exactly one of claimName or configMapName",
            )
        )
    )

    claim_name: str | None = Field(default=None, description="PVC holding the GeoIP database")
    config_map_name: str | None = Field(default=None, description="or a ConfigMap (binaryData)")
    file: str = Field(default="GeoLite2-City.mmdb", pattern=r"^[A-Za-z0-9._-]+$")


class PrivacySpec(Spec):
    salt_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-salt", key="salt")
    )
    geoip: GeoIPSpec | None = Field(default=None, description="no GeoIP: country stays empty")


class MonitoringSpec(Spec):
    prometheus_url: str | None = Field(
        default=None, pattern=r"^https?://", description="load signals for the heartbeat controller"
    )
    load_signal_interval_seconds: int = Field(default=30, ge=5, le=3600)
    query_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    combat_load_query: str = Field(
        default='sum(analytics_players_in_combat{namespace="$namespace"})'
        ' / sum(analytics_sessions_active{namespace="$namespace"})',
        min_length=1,
        description="PromQL giving the share of players in combat; $namespace, $pipeline",
    )
    service_monitor: bool = Field(
        default=True, description="when the monitoring.coreos.com CRDs exist"
    )
    pushgateway_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Prometheus Pushgateway the nightly session check pushes its gauges to",
    )


class DailyInsightsSpec(Spec):
    """The daily job (`gameplay-analytics insights daily`) as a CronJob: the dbt marts on the
    hot store and the day's summary for the roadmap review (docs/analytics.md)."""

    schedule: str = Field(
        default="30 5 * * *",
        pattern=r"^\S+( \S+){4}$",
        description="cron schedule, UTC (default 05:30: yesterday is closed)",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        description="an image with dbt (.venv/dbt) and analytics/dbt in its working directory; "
        "unset: the pipeline's image, where dbt is absent and only the summary is written",
    )
    dbt: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: build the marts when the image has dbt"
    )
    claim_name: str | None = Field(
        default=None,
        min_length=1,
        description="PVC keeping the summaries (<day>/summary.md, .json); unset: an emptyDir, "
        "the summary only in the Job's log",
    )


class AnalyticsPipelineSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!(has(self.objectStore) && has(self.warmVolume))",
                "set objectStore or warmVolume for the warm store, not both",
            )
        )
    )

    image: str | None = Field(
        default=None,
        min_length=1,
        description="the gateway/aggregator image; unset: the operator's own release's image",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    nats: NatsSpec = Field(default_factory=NatsSpec)
    postgres: PostgresSpec = Field(default_factory=PostgresSpec)
    object_store: ObjectStoreSpec | None = Field(
        default=None,
        description="the warm store on an S3 API; with neither this nor warmVolume the "
        "Parquet export is off and the hot retention drops days unexported",
    )
    warm_volume: WarmVolumeSpec | None = Field(
        default=None, description="or the warm store on a volume (a PVC every aggregator mounts)"
    )
    gateway: GatewaySpec = Field(default_factory=GatewaySpec)
    aggregator: AggregatorSpec = Field(default_factory=AggregatorSpec)
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)
    sampling_policy_ref: LocalObjectRef | None = Field(
        default=None, description="SamplingPolicy in this namespace; none: the default rules"
    )
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    daily_insights: DailyInsightsSpec | None = Field(
        default=None, description="the daily dbt build + summary as a CronJob; unset: none"
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec,
        description="NetworkPolicies for the gateways, aggregators and the nightly check",
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="what happens to the NATS stream (with its consumer) and config bucket "
        "when the pipeline is deleted: Retain keeps them, Delete removes them",
    )
