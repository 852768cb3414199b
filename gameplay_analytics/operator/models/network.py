"""AnalyticsPipeline: the NetworkPolicies the operator renders for its pods (`networkPolicy`).

Peers are written the way a person thinks of them: CIDRs, or pods by labels in namespaces by
labels. Ports left unset follow the pipeline (the NATS URL's port, the S3 endpoint's, the
Pushgateway's, 5432 for Postgres).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from gameplay_analytics.operator.models.base import Spec, cel_rules

__all__ = ["Cidr", "NetworkPeer", "NetworkPolicySpec", "NetworkTarget", "Port"]

CIDR_PATTERN = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
ANY_ADDRESS = "0.0.0.0/0"
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
Cidr = Annotated[str, StringConstraints(pattern=CIDR_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]

_SOME_PEER = cel_rules(
    (
        "(has(self.cidrs) && size(self.cidrs) > 0) || has(self.podLabels)"
        " || has(self.namespaceLabels)",
        "name the peer: cidrs, podLabels or namespaceLabels",
    )
)


class NetworkPeer(Spec):
    """Pods (by `podLabels`, in namespaces by `namespaceLabels`; neither namespace field: the
    pipeline's own namespace; `namespaceLabels: {}`: every namespace) or address ranges."""

    model_config = ConfigDict(json_schema_extra=_SOME_PEER)

    cidrs: list[Cidr] = Field(
        default_factory=list, max_length=32, description="address ranges (ipBlock peers)"
    )
    pod_labels: dict[str, str] | None = Field(default=None, description="pods with these labels")
    namespace_labels: dict[str, str] | None = Field(
        default=None, description="in namespaces with these labels ({}: any namespace)"
    )


class NetworkTarget(NetworkPeer):
    """An egress destination: a peer and its TCP ports (unset: the pipeline's own)."""

    model_config = ConfigDict(json_schema_extra=_SOME_PEER)

    ports: list[Port] | None = Field(
        default=None,
        max_length=16,
        description="TCP ports; unset: taken from the pipeline (URL or default port)",
    )


def _any(*, ports: list[int] | None = None) -> NetworkTarget:
    return NetworkTarget(cidrs=[ANY_ADDRESS], ports=ports)


class NetworkPolicySpec(Spec):
    """One NetworkPolicy per component: the gateway accepts its WebSocket port from anywhere
    and its metrics from `metricsFrom`; the aggregator and the nightly check accept only
    metrics (the check: nothing). Egress is NATS, Postgres, the object store, the JWKS
    endpoint, the Pushgateway and DNS, each only for the components that use it."""

    enabled: bool = Field(
        default=False, description="render NetworkPolicies for the gateway, aggregator, check"
    )
    metrics_from: list[NetworkPeer] = Field(
        default_factory=lambda: [NetworkPeer(namespace_labels=MONITORING_NAMESPACE)],
        max_length=16,
        description="who may scrape the metrics ports (default: the monitoring namespace)",
    )
    nats: NetworkTarget = Field(
        default_factory=lambda: NetworkTarget(
            pod_labels={"app.kubernetes.io/name": "nats"}, namespace_labels={}
        ),
        description="default: pods app.kubernetes.io/name=nats in any namespace",
    )
    postgres: NetworkTarget = Field(
        default_factory=_any, description="default: any address, port 5432"
    )
    object_store: NetworkTarget = Field(
        default_factory=_any, description="default: any address, the endpoint's port (443)"
    )
    jwks: NetworkTarget = Field(
        default_factory=_any,
        description="the gateways' JWKS endpoint (with gateway.auth.jwksUrl); default: any, 443",
    )
    pushgateway: NetworkTarget = Field(
        default_factory=lambda: NetworkTarget(namespace_labels=MONITORING_NAMESPACE),
        description="the nightly check's Pushgateway (with monitoring.pushgatewayUrl)",
    )
    dns: NetworkTarget = Field(
        default_factory=lambda: NetworkTarget(
            namespace_labels={"kubernetes.io/metadata.name": "kube-system"},
            pod_labels={"k8s-app": "kube-dns"},
            ports=[53],
        ),
        description="name resolution (UDP and TCP); default: kube-dns in kube-system",
    )
