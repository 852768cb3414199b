"""The specs of the three custom resources, as pydantic models; `crds/` is generated from them.

Every field has a default a person would pick, so a minimal resource is a few lines. Rules
that span fields are CEL (`x-kubernetes-validations`) so that `kubectl apply` refuses them.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Self

import celpy
from celpy.adapter import json_to_cel
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from gameplay_analytics.contract import natsnames
from gameplay_analytics.sampling.rules import COHORT_PATTERN

__all__ = [
    "GROUP",
    "VERSION",
    "AdaptiveBoundsForm",
    "AggregatorSpec",
    "AnalyticsPipelineSpec",
    "AutoscalingSpec",
    "BreakerSpec",
    "ClassRuleForm",
    "ConfigMapKeyRef",
    "EventOverrideForm",
    "GatewaySpec",
    "GeoIPSpec",
    "HeartbeatSpec",
    "LocalObjectRef",
    "MonitoringSpec",
    "NatsSpec",
    "ObjectStoreSpec",
    "PostgresSpec",
    "PrivacySpec",
    "Quantities",
    "ResourcesSpec",
    "RetentionSpec",
    "SamplingPolicySpec",
    "SamplingRulesForm",
    "SchemaSource",
    "SchemaVersionSpec",
    "SecretKeyRef",
    "TierRatesForm",
    "WarmVolumeSpec",
]

GROUP = "analytics.gameplay.dev"
VERSION = "v1alpha1"
NATS_NAME = r"^[A-Za-z0-9_-]+$"
NATS_SUBJECT = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
SEMVER_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class _CelChecked(BaseModel):
    """Evaluates the CEL rules a model puts in its CRD (`x-kubernetes-validations`) with
    cel-python, on the model's wire form with defaults applied and unset fields absent, as the
    API server sees it: a spec `kubectl apply` would refuse, the model refuses with the same
    message, and each rule is written once."""

    @model_validator(mode="after")
    def _x_kubernetes_validations(self) -> Self:
        programs = _cel_programs(type(self))
        if programs:
            wire = self.model_dump(mode="json", by_alias=True, exclude_none=True)
            document = json_to_cel(wire)
            for program, message in programs:
                if not program.evaluate({"self": document}):
                    raise ValueError(message)
        return self


class _Spec(_CelChecked):
    """camelCase on the wire (Kubernetes style), snake_case in Python; unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


_CEL = celpy.Environment()


@functools.cache
def _cel_programs(cls: type[BaseModel]) -> tuple[tuple[Any, str], ...]:
    extra = cls.model_config.get("json_schema_extra")
    rules: Any = extra.get("x-kubernetes-validations", []) if isinstance(extra, dict) else []
    return tuple(
        (_CEL.program(_CEL.compile(str(rule["rule"]))), str(rule["message"]))
        for rule in rules
        if "oldSelf" not in str(rule["rule"])  # transition rules only run on updates
    )


# -- references ---------------------------------------------------------------------------------


class SecretKeyRef(_Spec):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Secret name")
    key: str = Field(min_length=1, max_length=253, description="key inside the Secret")


class LocalObjectRef(_Spec):
    name: str = Field(min_length=1, max_length=253)


class ConfigMapKeyRef(_Spec):
    name: str = Field(min_length=1, max_length=253, description="ConfigMap name")
    key: str = Field(min_length=1, max_length=253, description="key holding the JSON Schema")


Quantity = Annotated[
    Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)] | int,
    Field(union_mode="left_to_right"),
]


class Quantities(_Spec):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ResourcesSpec(_Spec):
    """Container requests and limits (cpu, memory), as Kubernetes quantities."""

    requests: Quantities = Field(default_factory=Quantities)
    limits: Quantities = Field(default_factory=Quantities)


# -- AnalyticsPipeline --------------------------------------------------------------------------


class NatsSpec(_Spec):
    url: str = Field(default="nats://nats:4222", pattern=r"^(nats|tls)://", description="NATS URL")
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="a NATS .creds file; none for an unauthenticated server"
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


class PostgresSpec(_Spec):
    dsn_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-postgres", key="dsn"),
        description="Secret key holding the hot store's DSN",
    )


class ObjectStoreSpec(_Spec):
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://", description="S3 API endpoint (MinIO); none for AWS S3"
    )
    bucket: str = Field(default="gameplay-analytics", min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=256, description="key prefix inside the bucket")
    credentials_secret_ref: LocalObjectRef = Field(
        default_factory=lambda: LocalObjectRef(name="analytics-object-store"),
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )


class AutoscalingSpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas")
        )
    )

    min_replicas: int = Field(default=2, ge=1, le=1000)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, description="percent of requests")


class GatewaySpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!(has(self.replicas) && has(self.autoscaling))",
                "set either replicas or autoscaling, not both",
            )
        )
    )

    replicas: int | None = Field(default=None, ge=0, le=1000, description="fixed count (default 2)")
    autoscaling: AutoscalingSpec | None = Field(default=None, description="an HPA on CPU instead")
    resources: ResourcesSpec = Field(
        default_factory=lambda: ResourcesSpec(
            requests=Quantities(cpu="250m", memory="256Mi"),
            limits=Quantities(cpu="1", memory="512Mi"),
        )
    )
    queue_capacity: int = Field(
        default=5000, ge=100, le=1_000_000, description="bounded queue, events"
    )
    port: int = Field(default=8765, ge=1, le=65535, description="WebSocket port")
    metrics_port: int = Field(default=9100, ge=1, le=65535)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    shard: str = Field(default="", max_length=63, description="shard label stamped on events")
    jwt_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-jwt", key="secret")
    )


class AggregatorSpec(_Spec):
    replicas: int = Field(default=1, ge=0, le=100)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    metrics_port: int = Field(default=9101, ge=1, le=65535)
    resources: ResourcesSpec = Field(
        default_factory=lambda: ResourcesSpec(
            requests=Quantities(cpu="250m", memory="512Mi"),
            limits=Quantities(cpu="2", memory="1Gi"),
        )
    )


class RetentionSpec(_Spec):
    hot_hours: int = Field(default=48, ge=1, le=8760, description="Postgres partitions kept")
    warm_days: int = Field(default=183, ge=1, le=3650, description="Parquet kept (6 months)")


class GeoIPSpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "has(self.claimName) != has(self.configMapName)",
                "set exactly one of claimName or configMapName",
            )
        )
    )

    claim_name: str | None = Field(default=None, description="PVC holding the GeoIP database")
    config_map_name: str | None = Field(default=None, description="or a ConfigMap (binaryData)")
    file: str = Field(default="GeoLite2-City.mmdb", pattern=r"^[A-Za-z0-9._-]+$")


class PrivacySpec(_Spec):
    salt_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-salt", key="salt")
    )
    geoip: GeoIPSpec | None = Field(default=None, description="no GeoIP: country stays empty")


class MonitoringSpec(_Spec):
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


class WarmVolumeSpec(_Spec):
    claim_name: str = Field(
        min_length=1, max_length=253, description="PVC the aggregators write Parquet to"
    )


class AnalyticsPipelineSpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
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
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="what happens to the NATS stream (with its consumer) and config bucket "
        "when the pipeline is deleted: Retain keeps them, Delete removes them",
    )


# -- SamplingPolicy -----------------------------------------------------------------------------
# The rules keep the designer's snake_case keys of schemas/sampling.yml (one shape everywhere).
# Every field is optional here because a policy is an overlay on the default rules; the
# sampling core checks names against the taxonomy and reports problems in the status.


class _Rules(_CelChecked):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRatesForm(_Rules):
    elite: float | None = Field(default=None, ge=0, le=1)
    boss: float | None = Field(default=None, ge=0, le=1)


class AdaptiveBoundsForm(_Rules):
    model_config = ConfigDict(
        json_schema_extra=_cel(("self.min <= self.max", "adaptive min must not exceed max"))
    )

    min: float = Field(ge=0, le=1)
    max: float = Field(ge=0, le=1)


class ClassRuleForm(_Rules):
    rate: float | None = Field(default=None, ge=0, le=1)
    tiers: TierRatesForm | None = None
    exempt: bool | None = None
    adaptive: AdaptiveBoundsForm | None = None
    cohort: str | None = Field(default=None, pattern=COHORT_PATTERN)


class EventOverrideForm(_Rules):
    rate: float | None = Field(default=None, ge=0, le=1)
    tiers: TierRatesForm | None = None
    cohort: str | None = Field(default=None, pattern=COHORT_PATTERN)


class SamplingRulesForm(_Rules):
    classes: dict[str, ClassRuleForm] = Field(default_factory=dict)
    events: dict[str, EventOverrideForm] = Field(default_factory=dict)
    debounce_ms: dict[str, int] = Field(default_factory=dict)


class HeartbeatSpec(_Spec):
    """The adaptive controller's thresholds; its bounds are `rules.classes.heartbeat.adaptive`."""

    cpu_target: float = Field(
        default=0.65, gt=0, le=1, description="gateway CPU share that sheds load"
    )
    combat_threshold: float = Field(
        default=0.85, gt=0, le=1, description="share of players in combat"
    )
    combat_hold_seconds: int = Field(default=120, ge=0, le=86400)
    step_factor: float = Field(default=2.0, gt=1, le=10)


class BreakerSpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.recoverBelow <= self.threshold", "recoverBelow must not exceed threshold")
        )
    )

    threshold: float = Field(default=0.8, gt=0, le=1, description="queue fill that trips")
    hold_seconds: int = Field(default=30, ge=0, le=3600)
    recover_below: float = Field(default=0.5, ge=0, le=1)
    recover_hold_seconds: int = Field(default=10, ge=0, le=3600)
    step: float = Field(default=0.5, gt=0, lt=1, description="multiplier per trip")
    floor: float = Field(default=0.125, gt=0, le=1, description="lowest multiplier")


class SamplingPolicySpec(_Spec):
    rules: SamplingRulesForm = Field(
        default_factory=SamplingRulesForm,
        description="overrides of schemas/sampling.yml, same shape",
    )
    heartbeat: HeartbeatSpec = Field(default_factory=HeartbeatSpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)


# -- SchemaVersion ------------------------------------------------------------------------------


class SchemaSource(_Spec):
    config_map_key_ref: ConfigMapKeyRef


class SchemaVersionSpec(_Spec):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "has(self.schema) != has(self.schemaFrom)",
                "set exactly one of schema (inline) or schemaFrom (a ConfigMap)",
            ),
            (
                "self == oldSelf",
                "a SchemaVersion is immutable: publish a new version as a new resource "
                "(a Rejected one is deleted and created again)",
            ),
        )
    )

    version: str = Field(pattern=SEMVER_PATTERN, description="MAJOR.MINOR.PATCH")
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="the JSON Schema document, inline",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    schema_from: SchemaSource | None = None
