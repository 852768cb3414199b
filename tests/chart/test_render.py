"""The chart lints, renders offline and every object passes Kubernetes' own schemas."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart import support

Render = tuple[list[dict[str, Any]], list[dict[str, Any]], str]

# The NATS dependency is declared but not vendored (no network here, and an install fetches it
# with `helm dependency build`); Helm's lint reports exactly that, and nothing else may appear.
_MISSING_DEPENDENCY = "chart directory is missing these dependencies: nats"


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = support.find(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_chart_lints_clean_in_strict_mode(values_name: str, full_values: dict[str, Any]) -> None:
    values = full_values if values_name == "full" else None
    kube = f"v{support.min_kube_version()}.0"
    report = helm_python.lint(support.CHART, values, strict=True, kube_version=kube)
    findings = [
        f"{m['path']}: {m['error']}"
        for m in report["messages"]
        if m["severity"] >= 2 and _MISSING_DEPENDENCY not in m["error"]
    ]
    assert findings == []


def test_chart_declares_kube_version_and_optional_nats_dependency() -> None:
    meta = support.chart_metadata()
    assert meta["apiVersion"] == "v2"
    assert support.min_kube_version() >= "1.29"  # CEL validation rules in the CRDs are GA there
    (nats,) = meta["dependencies"]
    assert nats["name"] == "nats"
    assert nats["condition"] == "nats.enabled"
    assert nats["repository"].startswith("https://nats-io.github.io/")
    ignored = (support.CHART / ".gitignore").read_text().split()
    assert "charts/" in ignored, "the NATS chart is fetched at install time, never vendored"


@pytest.mark.parametrize("values_name", ["default", "full"])
@pytest.mark.parametrize("kube", ["min", "newest"])
def test_every_rendered_object_is_valid_kubernetes(
    values_name: str, kube: str, default_render: Render, full_render: Render
) -> None:
    docs, _, _ = full_render if values_name == "full" else default_render
    version = support.min_kube_version() if kube == "min" else support.newest_kube_version()
    builtin = {d["kind"] for d in docs if support.has_builtin_schema(d, version)}
    assert builtin >= {"Deployment", "ServiceAccount", "Service"}
    assert support.k8s_errors(docs, version) == []  # the CRDs: test_crds.py


def test_default_render_is_the_operator_and_nothing_optional(default_render: Render) -> None:
    docs, _, _ = default_render
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


def test_operator_pod_is_non_root_read_only_with_probes_and_resources(
    default_render: Render,
) -> None:
    docs, _, _ = default_render
    (deployment,) = support.find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["args"] == ["operator"]
    assert container["image"] == "ghcr.io/gameplay-analytics/gameplay-analytics:0.1.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9102}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "GAMEPLAY_ANALYTICS_OPERATOR_NAMESPACE" not in env  # cluster scope: all namespaces
    assert env["GAMEPLAY_ANALYTICS_OPERATOR_LIVENESS_PORT"] == "8080"
    assert env["GAMEPLAY_ANALYTICS_OPERATOR_PEERING"] == "gameplay-analytics"
    assert pod["serviceAccountName"] == "ga-gameplay-analytics-operator"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # writable scratch space despite the read-only root filesystem


def test_metrics_service_selects_the_operator_pod(default_render: Render) -> None:
    docs, _, _ = default_render
    (service,) = support.find(docs, "Service")
    (deployment,) = support.find(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (9102, "metrics")


def test_full_values_reach_the_objects(full_render: Render) -> None:
    docs, _, _ = full_render
    (deployment,) = support.find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(docs)
    assert deployment["metadata"]["name"] == "games-analytics-operator"
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "registry.example.com/games/gameplay-analytics:1.2.3"
    assert container["imagePullPolicy"] == "Always"
    env = {e["name"]: e for e in container["env"]}
    assert env["GAMEPLAY_ANALYTICS_OPERATOR_NAMESPACE"]["value"] == "games"
    assert env["GAMEPLAY_ANALYTICS_OPERATOR_LIVENESS_PORT"]["value"] == "8081"
    assert env["GAMEPLAY_ANALYTICS_LOG_LEVEL"]["value"] == "debug"
    assert {p["containerPort"] for p in container["ports"]} == {8081, 9103}
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["priorityClassName"] == "analytics-critical"
    assert pod["serviceAccountName"] == "analytics-operator"
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "live-ops"
    (service,) = support.find(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 9200
    (pipeline,) = support.find(docs, "AnalyticsPipeline")
    (policy,) = support.find(docs, "SamplingPolicy")
    assert pipeline["metadata"]["name"] == policy["metadata"]["name"] == "live"
    assert pipeline["spec"]["samplingPolicyRef"] == {"name": "live"}
    assert pipeline["metadata"]["namespace"] == support.NAMESPACE


def test_image_digest_wins_over_tag() -> None:
    digest = "sha256:" + "a" * 64
    docs, _, _ = support.render({"image": {"tag": "9.9.9", "digest": digest}})
    assert _container(docs)["image"] == f"ghcr.io/gameplay-analytics/gameplay-analytics@{digest}"


def test_notes_tell_the_sre_what_to_apply_next(default_render: Render, full_render: Render) -> None:
    _, _, notes = default_render
    assert "kubectl -n analytics rollout status deployment/ga-gameplay-analytics-operator" in notes
    assert "apply -f pipeline.yaml" in notes
    assert "--for=condition=Ready ap/NAME" in notes
    assert "nats.enabled=true" in notes  # no NATS in this release: say how to get one
    _, _, notes = full_render
    assert "--for=condition=Ready ap/live" in notes
    assert "edit sp live" in notes
    assert 'namespace "games" only' in notes


def test_chart_renders_without_rbac_and_service_account() -> None:
    docs, _, _ = support.render(
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}}
    )
    assert sorted(d["kind"] for d in docs) == ["ClusterKopfPeering", "Deployment", "Service"]
    (deployment,) = support.find(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


def test_operator_env_names_are_settings_the_operator_reads(full_render: Render) -> None:
    """A misspelt variable would be ignored silently: each one must be an OperatorSettings field."""
    try:
        from gameplay_analytics.operator.runner import OperatorSettings
    except ModuleNotFoundError as exc:
        pytest.skip(f"the operator process is not importable yet: {exc}")
    prefix = OperatorSettings.model_config["env_prefix"]
    known = {prefix + name.upper() for name in OperatorSettings.model_fields}
    for docs in (full_render[0], support.render()[0]):
        names = {e["name"] for e in _container(docs)["env"] if e["name"].startswith(prefix)}
        assert names and names <= known, sorted(names - known)


@pytest.mark.parametrize(
    ("scope", "kind"), [("cluster", "ClusterKopfPeering"), ("namespace", "KopfPeering")]
)
def test_peering_object_matches_the_scope_and_the_operator_setting(scope: str, kind: str) -> None:
    docs, crds, _ = support.render({"rbac": {"scope": scope}})
    (peering,) = support.find(docs, kind)
    env = {e["name"]: e.get("value") for e in _container(docs)["env"]}
    assert peering["metadata"]["name"] == env["GAMEPLAY_ANALYTICS_OPERATOR_PEERING"]
    if scope == "namespace":
        assert peering["metadata"]["namespace"] == env["GAMEPLAY_ANALYTICS_OPERATOR_NAMESPACE"]
    assert support.cr_errors(crds, peering) == []
