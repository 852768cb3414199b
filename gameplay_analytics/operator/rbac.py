"""Every Kubernetes permission the operator needs, and nothing more: the chart's ClusterRole.

One row per (API group, resources) with the verbs used. The reconcilers' calls go through
`kube.RESOURCES`; kopf's own needs are listed with why. A test replays the operator's
traffic against the emulator and checks each request against this table.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["REQUIRED_RULES", "PolicyRule", "allows"]


class PolicyRule(TypedDict):
    apiGroups: list[str]
    resources: list[str]
    verbs: list[str]


REQUIRED_RULES: tuple[PolicyRule, ...] = (
    # The custom resources: kopf lists and watches them and patches annotations (its progress
    # and last-handled state); the reconcilers list pipelines and schema versions.
    {
        "apiGroups": ["analytics.gameplay.dev"],
        "resources": ["analyticspipelines", "samplingpolicies", "schemaversions"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["analytics.gameplay.dev"],
        "resources": [
            "analyticspipelines/status",
            "samplingpolicies/status",
            "schemaversions/status",
        ],
        "verbs": ["patch"],
    },
    # Owner references with blockOwnerDeletion need this where the admission plugin
    # OwnerReferencesPermissionEnforcement is on (OpenShift, hardened clusters).
    {
        "apiGroups": ["analytics.gameplay.dev"],
        "resources": ["analyticspipelines/finalizers"],
        "verbs": ["update"],
    },
    # Owned objects: read, create when missing, merge-patch back when they drift. ConfigMaps
    # are also read for SchemaVersion.spec.schemaFrom. These go only with their pipeline
    # (owner references); the optional kinds below are also deleted when no longer wanted.
    {
        "apiGroups": [""],
        "resources": ["configmaps", "services"],
        "verbs": ["get", "create", "patch"],
    },
    # Deployments are also watched: their readiness is the pipelines' Ready condition.
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    # The nightly data-quality check (operator/quality.py) and the optional daily insights job
    # (operator/daily.py), deleted when the pipeline no longer wants it.
    {
        "apiGroups": ["batch"],
        "resources": ["cronjobs"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["policy"],
        "resources": ["poddisruptionbudgets"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["monitoring.coreos.com"],
        "resources": ["servicemonitors", "prometheusrules"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    # spec.networkPolicy: one per component, deleted when turned off.
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "create", "patch", "delete"],
    },
    # Whether the monitoring.coreos.com CRDs exist (ServiceMonitor/PrometheusRule or not).
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get"],
    },
    # The Secrets a pipeline names (NATS credentials, and the digest on the pod templates that
    # rolls the pods on a rotation), read only, by name: never listed or watched.
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    # kopf posts Kubernetes Events about handling.
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    # kopf peering (one active replica): KopfPeering when watching one namespace,
    # ClusterKopfPeering when watching all.
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings", "clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
)


def allows(api_group: str, resource: str, verb: str) -> bool:
    """Whether the table grants `verb` on `resource` (e.g. "deployments", "x/status")."""
    return any(
        api_group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in REQUIRED_RULES
    )
