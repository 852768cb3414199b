"""The objects beside the workloads: Services, PodDisruptionBudgets, the gateway's HPA, and
the ServiceMonitor and PrometheusRule when the Prometheus Operator is there. Pure."""

from __future__ import annotations

from typing import Any

from gameplay_analytics.operator import alerts, quality
from gameplay_analytics.operator.naming import Pipeline, meta, object_names, selector_labels

__all__ = ["hpa", "pdb", "prometheus_rule", "service", "service_monitor"]


def service(
    pipeline: Pipeline, component: str, port: int | None, metrics_port: int
) -> dict[str, Any]:
    ports = [{"name": "metrics", "port": metrics_port, "targetPort": "metrics", "protocol": "TCP"}]
    service_type = "ClusterIP"
    if port is not None:
        ports.insert(0, {"name": "ws", "port": port, "targetPort": "ws", "protocol": "TCP"})
        service_type = pipeline.spec.gateway.service_type
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(pipeline, getattr(object_names(pipeline.name), component), component),
        "spec": {
            "type": service_type,
            "selector": selector_labels(pipeline.name, component),
            "ports": ports,
        },
    }


def pdb(pipeline: Pipeline, component: str) -> dict[str, Any]:
    # maxUnavailable (not minAvailable) so that a single replica can still be drained.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(pipeline, getattr(object_names(pipeline.name), component), component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(pipeline.name, component)},
        },
    }


def hpa(pipeline: Pipeline) -> dict[str, Any]:
    autoscaling = pipeline.spec.gateway.autoscaling
    assert autoscaling is not None
    name = object_names(pipeline.name).gateway
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(pipeline, name, "gateway"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


def service_monitor(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(pipeline, pipeline.name, "monitoring"),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "gameplay-analytics",
                    "app.kubernetes.io/instance": pipeline.name,
                }
            },
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }


def prometheus_rule(pipeline: Pipeline) -> dict[str, Any]:
    names = object_names(pipeline.name)
    jobs = f"{names.gateway}|{names.aggregator}|{quality.job_name(pipeline.name)}"  # pushed
    selector = f'namespace="{pipeline.namespace}",job=~"{jobs}"'
    scope = alerts.AlertScope(group=f"gameplay-analytics.{pipeline.name}", selector=selector)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta(pipeline, pipeline.name, "monitoring"),
        "spec": {"groups": alerts.rule_groups(scope)},
    }
