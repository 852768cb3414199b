"""The operator's NetworkPolicy (values `networkPolicy`): off by default; when on, a valid
object whose rules are exactly: metrics in from the monitoring peers; out to the API server,
NATS, Prometheus and DNS, each on its ports only."""

from __future__ import annotations

from typing import Any

from tests.chart import support

Render = tuple[list[dict[str, Any]], list[dict[str, Any]], str]


def _policy(values: dict[str, Any]) -> dict[str, Any]:
    docs, _, _ = support.render(values)
    (policy,) = support.find(docs, "NetworkPolicy")
    assert support.k8s_errors([policy], support.min_kube_version()) == []
    return policy


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def test_off_by_default(default_render: Render) -> None:
    docs, _, _ = default_render
    assert support.find(docs, "NetworkPolicy") == []


def test_default_rules_when_enabled() -> None:
    spec = _policy({"networkPolicy": {"enabled": True}})["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert spec["ingress"] == [{"from": [monitoring], "ports": _tcp(9102)}]
    dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    nats = {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}},
    }
    assert spec["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443, 6443)},
        {"to": [nats], "ports": _tcp(4222)},
        {"to": [monitoring], "ports": _tcp(9090)},
        {"to": [dns], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
    ]


def test_values_narrow_the_rules(full_values: dict[str, Any]) -> None:
    spec = _policy(full_values)["spec"]
    assert spec["ingress"][0]["ports"] == _tcp(9103)  # follows operator.metricsPort
    api, nats, _dns = spec["egress"]  # prometheus has no ports: left out
    assert api == {
        "to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}, {"ipBlock": {"cidr": "172.18.0.0/16"}}],
        "ports": _tcp(443),
    }
    assert nats["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}}}]
