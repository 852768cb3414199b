"""A pipeline's NetworkPolicies (`spec.networkPolicy`): one per component, each allowing only
the traffic that component needs. Pure.

- gateway: in on its WebSocket port from anywhere, on metrics from `metricsFrom`; out to NATS,
  DNS, and the JWKS endpoint when tokens are verified from one.
- aggregator: in on metrics only; out to NATS, Postgres, the object store (S3 warm store), DNS.
- quality (the nightly check): no way in; out to NATS, Postgres, the Pushgateway, DNS.
- daily-insights (with `spec.dailyInsights`): no way in; out to Postgres and DNS.

Unset ports follow the pipeline: the NATS URL's port (4222), Postgres' 5432, the S3 endpoint's
port (443 for AWS), the JWKS URL's and the Pushgateway's. Probes come from the kubelet, which
the common CNIs do not filter; NetworkPolicy leaves them alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from gameplay_analytics.operator import daily, quality
from gameplay_analytics.operator.models.network import NetworkPeer, NetworkTarget
from gameplay_analytics.operator.naming import Pipeline, meta, object_names, selector_labels

__all__ = ["COMPONENTS", "network_policies", "policy_names"]

COMPONENTS = ("gateway", "aggregator", "quality", "daily-insights")
POSTGRES_PORT = 5432
DNS_PORT = 53
DEFAULT_PORTS = {"nats": 4222, "tls": 4222, "http": 80, "https": 443}


def policy_names(pipeline: str) -> dict[str, str]:
    """component -> its NetworkPolicy's name (that of the workload it selects)."""
    names = object_names(pipeline)
    return {
        "gateway": names.gateway,
        "aggregator": names.aggregator,
        "quality": quality.job_name(pipeline),
        "daily-insights": daily.job_name(pipeline),
    }


def network_policies(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The three NetworkPolicies, or none when `spec.networkPolicy.enabled` is false."""
    spec = pipeline.spec
    policy = spec.network_policy
    if not policy.enabled:
        return []
    nats = _egress(policy.nats, _url_ports(spec.nats.url))
    dns = _dns(policy.dns)
    postgres = _egress(policy.postgres, [POSTGRES_PORT])
    metrics = [one for peer in policy.metrics_from for one in _peers(peer)]

    gateway_egress = [nats, dns]
    jwks_url = spec.gateway.auth.jwks_url
    if jwks_url is not None:
        gateway_egress.append(_egress(policy.jwks, _url_ports(jwks_url)))
    aggregator_egress = [nats, postgres, dns]
    store = spec.object_store
    if store is not None:
        ports = _url_ports(store.endpoint) if store.endpoint else [DEFAULT_PORTS["https"]]
        aggregator_egress.append(_egress(policy.object_store, ports))
    quality_egress = [nats, postgres, dns]
    if spec.monitoring.pushgateway_url is not None:
        pushgateway_ports = _url_ports(spec.monitoring.pushgateway_url)
        quality_egress.append(_egress(policy.pushgateway, pushgateway_ports))

    gateway_ingress = [
        {"ports": [_tcp(spec.gateway.port)]},  # players: from anywhere, this port only
        {"from": metrics, "ports": [_tcp(spec.gateway.metrics_port)]},
    ]
    aggregator_ingress = [{"from": metrics, "ports": [_tcp(spec.aggregator.metrics_port)]}]
    rules = {
        "gateway": (gateway_ingress, gateway_egress),
        "aggregator": (aggregator_ingress, aggregator_egress),
        "quality": ([], quality_egress),
    }
    if spec.daily_insights is not None:  # the daily dbt build: the hot store only
        rules["daily-insights"] = ([], [postgres, dns])
    names = policy_names(pipeline.name)
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(pipeline, names[component], component),
            "spec": {
                "podSelector": {"matchLabels": selector_labels(pipeline.name, component)},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": ingress,
                "egress": egress,
            },
        }
        for component, (ingress, egress) in rules.items()
    ]


def _url_ports(url: str) -> list[int]:
    """The ports of a URL, or of each URL of a comma-separated list (a NATS cluster)."""
    ports = set()
    for one in url.split(","):
        parsed = urlparse(one.strip())
        ports.add(parsed.port or DEFAULT_PORTS.get(parsed.scheme, DEFAULT_PORTS["https"]))
    return sorted(ports)


def _tcp(port: int) -> dict[str, Any]:
    return {"port": port, "protocol": "TCP"}


def _peers(peer: NetworkPeer) -> list[dict[str, Any]]:
    """ipBlocks for the CIDRs, then one peer for the label selectors (pods in namespaces)."""
    peers: list[dict[str, Any]] = [{"ipBlock": {"cidr": cidr}} for cidr in peer.cidrs]
    selected: dict[str, Any] = {}
    if peer.pod_labels is not None:
        selected["podSelector"] = {"matchLabels": dict(peer.pod_labels)}
    if peer.namespace_labels is not None:
        selected["namespaceSelector"] = {"matchLabels": dict(peer.namespace_labels)}
    return [*peers, selected] if selected else peers


def _egress(target: NetworkTarget, default_ports: list[int]) -> dict[str, Any]:
    ports = target.ports if target.ports is not None else default_ports
    return {"to": _peers(target), "ports": [_tcp(p) for p in ports]}


def _dns(target: NetworkTarget) -> dict[str, Any]:
    ports = target.ports or [DNS_PORT]
    return {
        "to": _peers(target),
        "ports": [{"port": p, "protocol": proto} for p in ports for proto in ("UDP", "TCP")],
    }
