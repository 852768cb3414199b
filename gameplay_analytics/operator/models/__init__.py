"""The specs of the three custom resources, as pydantic models; `crds/` is generated from them.

Every field has a default a person would pick, so a minimal resource is a few lines. Rules
that span fields are CEL (`x-kubernetes-validations`) so that `kubectl apply` refuses them.
"""

from gameplay_analytics.operator.models.base import GROUP, VERSION
from gameplay_analytics.operator.models.network import (
    NetworkPeer,
    NetworkPolicySpec,
    NetworkTarget,
)
from gameplay_analytics.operator.models.pipeline import (
    AnalyticsPipelineSpec,
    DailyInsightsSpec,
    GeoIPSpec,
    MonitoringSpec,
    PrivacySpec,
    RetentionSpec,
)
from gameplay_analytics.operator.models.refs import (
    ConfigMapKeyRef,
    LocalObjectRef,
    Quantities,
    ResourcesSpec,
    SecretKeyRef,
)
from gameplay_analytics.operator.models.sampling import (
    AdaptiveBoundsForm,
    BreakerSpec,
    ClassRuleForm,
    EventOverrideForm,
    HeartbeatSpec,
    SamplingPolicySpec,
    SamplingRulesForm,
    TierRatesForm,
)
from gameplay_analytics.operator.models.schemaversion import SchemaSource, SchemaVersionSpec
from gameplay_analytics.operator.models.security import (
    GatewayAuthSpec,
    NatsTLSSpec,
    PostgresTLSSpec,
)
from gameplay_analytics.operator.models.stores import (
    NatsSpec,
    NatsUsersSpec,
    ObjectStoreSpec,
    PostgresSpec,
    WarmVolumeSpec,
)
from gameplay_analytics.operator.models.workloads import (
    AggregatorSpec,
    AutoscalingSpec,
    GatewaySpec,
)

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
    "DailyInsightsSpec",
    "EventOverrideForm",
    "GatewayAuthSpec",
    "GatewaySpec",
    "GeoIPSpec",
    "HeartbeatSpec",
    "LocalObjectRef",
    "MonitoringSpec",
    "NatsSpec",
    "NatsTLSSpec",
    "NatsUsersSpec",
    "NetworkPeer",
    "NetworkPolicySpec",
    "NetworkTarget",
    "ObjectStoreSpec",
    "PostgresSpec",
    "PostgresTLSSpec",
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
