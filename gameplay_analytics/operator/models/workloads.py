"""AnalyticsPipeline: the gateway and aggregator workloads the operator runs."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from gameplay_analytics.operator.models.base import Spec, cel_rules
from gameplay_analytics.operator.models.network import Cidr
from gameplay_analytics.operator.models.refs import Quantities, ResourcesSpec, SecretKeyRef
from gameplay_analytics.operator.models.security import GatewayAuthSpec

__all__ = ["AggregatorSpec", "AutoscalingSpec", "GatewaySpec"]


class AutoscalingSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas")
        )
    )

    min_replicas: int = Field(default=2, ge=1, le=1000)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, description="percent of requests")


class GatewaySpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!(has(self.replicas) && has(self.autoscaling))",
                "set either replicas or autoscaling, not both",
            ),
            (
                "!has(self.proxyProtocol) || !self.proxyProtocol"
                " || (has(self.trustedProxies) && size(self.trustedProxies) > 0)",
                "proxyProtocol needs trustedProxies (the balancers whose headers are read)",
            ),
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
    queue_capacity: int | None = Field(
        default=None,
        ge=100,
        le=1_000_000,
        description="bounded ingest queue, events; unset: the gateway's own default (its "
        "QUEUE_CAPACITY setting), not a copy of it stored in every pipeline",
    )
    port: int = Field(default=8765, ge=1, le=65535, description="WebSocket port")
    metrics_port: int = Field(default=9100, ge=1, le=65535)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    shard: str = Field(default="", max_length=63, description="shard label stamped on events")
    jwt_secret_ref: SecretKeyRef = Field(
        default_factory=lambda: SecretKeyRef(name="analytics-jwt", key="secret"),
        description="HS256 secret of players' tokens (development; unused once auth is set)",
    )
    auth: GatewayAuthSpec = Field(
        default_factory=GatewayAuthSpec,
        description="RS256/ES256 token verification (JWKS URL or PEM keys), iss and aud",
    )
    trusted_proxies: list[Cidr] = Field(
        default_factory=list,
        max_length=64,
        description="CIDRs of the proxies whose Forwarded / X-Forwarded-For name the client",
    )
    proxy_protocol: bool = Field(
        default=False,
        description="trustedProxies send a PROXY protocol v1/v2 header naming the client",
    )


class AggregatorSpec(Spec):
    replicas: int = Field(default=1, ge=0, le=100)
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="most JetStream messages in one transaction; unset: the aggregator's own "
        "default (its BATCH_SIZE setting), not a copy of it stored in every pipeline",
    )
    metrics_port: int = Field(default=9101, ge=1, le=65535)
    resources: ResourcesSpec = Field(
        default_factory=lambda: ResourcesSpec(
            requests=Quantities(cpu="250m", memory="512Mi"),
            limits=Quantities(cpu="2", memory="1Gi"),
        )
    )
