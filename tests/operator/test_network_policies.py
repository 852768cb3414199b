"""spec.networkPolicy: one NetworkPolicy per component, valid for Kubernetes, with exactly the
rules each component needs (operator/netpol.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.operator import kschema
from tests.operator.test_manifests import FULL, by_kind, render

ROOT = Path(__file__).resolve().parents[2]
HARDENED = yaml.safe_load((ROOT / "examples/analyticspipeline-hardened.yaml").read_text())["spec"]
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
DNS = {
    "to": [
        {
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def policies(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    objects = by_kind(render(spec))
    found = {name: o for (kind, name), o in objects.items() if kind == "NetworkPolicy"}
    assert all(kschema.errors(o) == [] for o in found.values())
    return {name: o["spec"] for name, o in found.items()}


def test_none_unless_enabled() -> None:
    assert policies({}) == {}


def test_default_peers_follow_the_pipeline() -> None:
    p = policies(FULL)
    assert sorted(p) == ["p-aggregator", "p-daily-insights", "p-gateway", "p-quality"]
    for component in ("gateway", "aggregator", "quality"):
        selector = p[f"p-{component}"]["podSelector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == component
        assert p[f"p-{component}"]["policyTypes"] == ["Ingress", "Egress"]
    nats = {
        "to": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}},
                "namespaceSelector": {"matchLabels": {}},
            }
        ],
        "ports": _tcp(4222),
    }
    anywhere = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    # the gateway: players from anywhere on the WebSocket port; metrics from monitoring only
    assert p["p-gateway"]["ingress"] == [
        {"ports": _tcp(8765)},
        {"from": [MONITORING], "ports": _tcp(9100)},
    ]
    assert p["p-gateway"]["egress"] == [nats, DNS]  # no Postgres, no S3
    # the aggregator: nothing in but metrics; out to NATS, Postgres, MinIO (the endpoint's port)
    assert p["p-aggregator"]["ingress"] == [{"from": [MONITORING], "ports": _tcp(9101)}]
    assert p["p-aggregator"]["egress"] == [
        nats,
        {"to": anywhere, "ports": _tcp(5432)},
        DNS,
        {"to": anywhere, "ports": _tcp(9000)},
    ]
    # the nightly check: no way in at all
    assert p["p-quality"]["ingress"] == []
    assert p["p-quality"]["egress"] == [nats, {"to": anywhere, "ports": _tcp(5432)}, DNS]
    # the daily dbt build: the hot store and DNS, nothing else
    assert p["p-daily-insights"]["ingress"] == []
    assert p["p-daily-insights"]["egress"] == [{"to": anywhere, "ports": _tcp(5432)}, DNS]


def test_spec_fields_narrow_every_peer() -> None:
    p = policies(HARDENED)
    prometheus = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        **MONITORING,
    }
    assert p["p-gateway"]["ingress"][1]["from"] == [prometheus]
    nats = {
        "to": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nats"}},
            }
        ],
        "ports": _tcp(4222),  # tls://…:4222
    }
    jwks = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443)}  # https, no port
    assert p["p-gateway"]["egress"] == [nats, DNS, jwks]
    postgres = {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": _tcp(5432)}
    s3 = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443)}  # AWS S3: https
    assert p["p-aggregator"]["egress"] == [nats, postgres, DNS, s3]


def test_explicit_ports_and_a_pushgateway() -> None:
    spec = {
        "nats": {"url": "nats://n1:4222,nats://n2:4223"},
        "monitoring": {"pushgatewayUrl": "http://pushgateway.monitoring.svc:9091"},
        "networkPolicy": {
            "enabled": True,
            "postgres": {"cidrs": ["10.0.0.5/32", "10.0.0.6/32"], "ports": [6432]},
            "dns": {"cidrs": ["169.254.20.10/32"]},  # NodeLocal DNSCache
        },
    }
    p = policies(spec)
    assert p["p-quality"]["egress"] == [
        {"to": p["p-quality"]["egress"][0]["to"], "ports": _tcp(4222, 4223)},
        {
            "to": [{"ipBlock": {"cidr": "10.0.0.5/32"}}, {"ipBlock": {"cidr": "10.0.0.6/32"}}],
            "ports": _tcp(6432),
        },
        {
            "to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        },
        {"to": [MONITORING], "ports": _tcp(9091)},
    ]
