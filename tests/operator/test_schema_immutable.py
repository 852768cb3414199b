"""An accepted SchemaVersion does not change: CEL refuses spec edits, and an edit of the
ConfigMap it points at leaves the accepted document in force (and says so)."""

from __future__ import annotations

import json
from typing import Any

import celpy

from gameplay_analytics.contract.registry import released_schemas
from gameplay_analytics.operator import crdgen
from tests.operator.conftest import condition, cr_url, until
from tests.operator.emulator import Emulator
from tests.operator.test_operator import ASV, MERGE

CEL = celpy.Environment()


def transition_rules() -> list[dict[str, str]]:
    crd = crdgen.build_crds()["schemaversions.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return [r for r in spec["x-kubernetes-validations"] if "oldSelf" in r["rule"]]


def test_the_crd_refuses_any_edit_of_a_schema_version_spec() -> None:
    (rule,) = transition_rules()
    program = CEL.program(CEL.compile(rule["rule"]))
    old = {"version": "1.1.0", "schema": {"version": "1.1.0"}}
    new = {"version": "1.1.0", "schema": {"version": "1.1.0", "x": 1}}
    run = lambda a, b: program.evaluate(  # noqa: E731
        {"self": celpy.json_to_cel(a), "oldSelf": celpy.json_to_cel(b)}
    )
    assert run(old, old) and not run(new, old)
    assert "immutable" in rule["message"]


async def test_a_configmap_edit_after_acceptance_keeps_the_accepted_document(
    k8s: Emulator, operator: object
) -> None:
    doc = json.loads(json.dumps(released_schemas()["1.0.0"]))
    doc["version"] = "1.1.0"
    doc["definitions"]["loot_drop"]["properties"]["source"] = {"type": "string"}
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "schemas"},
        "data": {"v1.1.0": json.dumps(doc)},
    }
    assert (await k8s.post("/api/v1/namespaces/default/configmaps", json=config_map)).status == 200
    body = {
        "apiVersion": "analytics.gameplay.dev/v1alpha1",
        "kind": "SchemaVersion",
        "metadata": {"name": "v1-1-0"},
        "spec": {
            "version": "1.1.0",
            "schemaFrom": {"configMapKeyRef": {"name": "schemas", "key": "v1.1.0"}},
        },
    }
    await k8s.post(cr_url("schemaversions"), json=body)
    status = await until(
        lambda: (
            (k8s.get_obj(ASV, "default", "v1-1-0").get("status") or {}).get("acceptedSchema")
            and k8s.get_obj(ASV, "default", "v1-1-0")["status"]
        )
    )
    assert status["phase"] == "Accepted" and status["acceptedSchema"] == doc

    edited = json.loads(json.dumps(doc))
    edited["definitions"]["loot_drop"]["properties"]["source"] = {"type": "integer"}
    await k8s.patch(
        "/api/v1/namespaces/default/configmaps/schemas",
        json={"data": {"v1.1.0": json.dumps(edited)}},
        headers=MERGE,
    )
    # Any event makes the operator look again (here: a label, as `kubectl label` would).
    await k8s.patch(
        cr_url("schemaversions", "v1-1-0"), json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE
    )
    ready = await until(
        lambda: (
            "changed after" in condition(k8s.get_obj(ASV, "default", "v1-1-0")).get("message", "")
            and condition(k8s.get_obj(ASV, "default", "v1-1-0"))
        ),
        within=20,
    )
    assert ready["status"] == "True"
    status = k8s.get_obj(ASV, "default", "v1-1-0")["status"]
    assert status["phase"] == "Accepted" and status["acceptedSchema"] == doc
