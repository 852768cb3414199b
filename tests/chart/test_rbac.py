"""Least privilege: the chart grants the operator exactly the calls it makes
(`REQUIRED_RULES` in gameplay_analytics/operator/rbac.py), in cluster and in namespace scope."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from tests.chart import support

Triple = tuple[str, str, str]

# Resources a namespaced Role cannot grant (the chart's _operator-rules.tpl lists the same).
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings", "nodes"}


def _triples(rules: list[dict[str, Any]]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _granted(docs: list[dict[str, Any]], kind: str) -> set[Triple]:
    return _triples([r for d in support.find(docs, kind) for r in d.get("rules", [])])


def _required_rules() -> list[dict[str, Any]]:
    try:
        module = importlib.import_module("gameplay_analytics.operator.rbac")
    except ModuleNotFoundError as exc:
        if exc.name != "gameplay_analytics.operator.rbac":
            raise
        pytest.skip("gameplay_analytics/operator/rbac.py (REQUIRED_RULES) does not exist yet")
    return list(module.REQUIRED_RULES)


def _mismatch(granted: set[Triple], required: list[dict[str, Any]]) -> str:
    want = _triples(required)
    return (
        f"granted but never used: {sorted(granted - want)}\n"
        f"used but not granted: {sorted(want - granted)}\n"
        "paste into helm/gameplay-analytics/templates/_operator-rules.tpl:\n"
        + yaml.safe_dump(required, default_flow_style=None, sort_keys=False)
    )


def test_cluster_scope_grants_exactly_the_required_rules() -> None:
    required = _required_rules()
    docs, _, _ = support.render({"rbac": {"scope": "cluster"}})
    granted = _granted(docs, "ClusterRole")
    assert granted == _triples(required), _mismatch(granted, required)
    assert not support.find(docs, "Role")


def test_namespace_scope_grants_exactly_the_required_rules_split_by_scope() -> None:
    required = _required_rules()
    docs, _, _ = support.render(
        {"rbac": {"scope": "namespace"}, "operator": {"watchNamespace": "games"}}
    )
    in_role, in_cluster_role = _granted(docs, "Role"), _granted(docs, "ClusterRole")
    granted = in_role | in_cluster_role
    assert granted == _triples(required), _mismatch(granted, required)
    assert {r for _, r, _ in in_cluster_role} <= CLUSTER_SCOPED
    assert not {r for _, r, _ in in_role} & CLUSTER_SCOPED


@pytest.mark.parametrize("scope", ["cluster", "namespace"])
def test_rbac_is_least_privilege_and_bound_to_the_operator(scope: str) -> None:
    docs, _, _ = support.render({"rbac": {"scope": scope}, "operator": {"watchNamespace": "games"}})
    granted = _granted(docs, "ClusterRole") | _granted(docs, "Role")
    assert granted, "no RBAC rendered"
    assert not [t for t in granted if "*" in t], "no wildcards"
    assert {v for g, r, v in granted if r == "secrets"} <= {"get"}, "secrets are only read"
    assert not {r for _, r, _ in granted} & {"pods/exec", "clusterroles", "rolebindings"}
    (account,) = support.find(docs, "ServiceAccount")
    bindings = support.find(docs, "ClusterRoleBinding") + support.find(docs, "RoleBinding")
    for binding in bindings:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": support.NAMESPACE,
            }
        ]
        role_kind = "ClusterRole" if binding["kind"] == "ClusterRoleBinding" else "Role"
        assert binding["roleRef"]["kind"] == role_kind
        (role,) = support.find(docs, role_kind)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
    if scope == "namespace":
        (role,) = support.find(docs, "Role")
        (binding,) = support.find(docs, "RoleBinding")
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "games"


def test_namespace_scope_defaults_to_the_release_namespace() -> None:
    docs, _, _ = support.render({"rbac": {"scope": "namespace"}})
    (role,) = support.find(docs, "Role")
    assert role["metadata"]["namespace"] == support.NAMESPACE
    (deployment,) = support.find(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GAMEPLAY_ANALYTICS_OPERATOR_NAMESPACE"] == support.NAMESPACE
