"""The CRDs: generated from the models, valid CRDs, and the examples judged by their schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplay_analytics.operator import crdgen, models
from tests.operator import kschema
from tests.operator.crvalidate import apply_defaults, validate_cr

ROOT = Path(__file__).resolve().parents[2]
EXPECT = "examples.analytics.gameplay.dev/expect"
SPECS = {
    "AnalyticsPipeline": models.AnalyticsPipelineSpec,
    "SamplingPolicy": models.SamplingPolicySpec,
    "SchemaVersion": models.SchemaVersionSpec,
}


def crds() -> dict[str, dict[str, Any]]:
    return {
        doc["spec"]["names"]["kind"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml")))
    }


def examples(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


GOOD = examples(ROOT / "examples")
BAD = examples(ROOT / "examples" / "invalid")


def test_committed_crds_equal_the_generated_ones() -> None:
    generated = {name: crdgen.render(crd) for name, crd in crdgen.build_crds().items()}
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert committed == generated, "run: python -m gameplay_analytics.operator.crdgen"


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_crd_is_a_valid_kubernetes_object(kind: str) -> None:
    assert kschema.errors(crds()[kind]) == []


@pytest.mark.parametrize(
    ("kind", "short"),
    [("AnalyticsPipeline", "ap"), ("SamplingPolicy", "sp"), ("SchemaVersion", "asv")],
)
def test_crd_names_status_and_columns(kind: str, short: str) -> None:
    spec = crds()[kind]["spec"]
    assert spec["group"] == "analytics.gameplay.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == [short]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Age"] == ".metadata.creationTimestamp"
    if kind == "SchemaVersion":
        assert columns["Accepted"] == ".status.phase"
    else:
        assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    if kind == "SamplingPolicy":
        assert columns["SamplingVersion"] == ".status.samplingVersion"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions"} <= status.keys()


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Violations of the structural-schema rules the API server enforces."""
    problems = []
    if "$ref" in schema or ("nullable" in schema and "type" not in schema):
        problems.append(f"{path}: $ref or untyped nullable")
    if "type" not in schema and not (
        schema.get("x-kubernetes-int-or-string")
        or schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        problems.append(f"{path}: no type")
    for name, child in schema.get("properties", {}).items():
        problems += _walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            problems += _walk(schema[key], f"{path}[{key}]")
    return problems


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_crd_schema_is_structural(kind: str) -> None:
    (version,) = crds()[kind]["spec"]["versions"]
    assert _walk(version["schema"]["openAPIV3Schema"]) == []


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_api_server_defaults_equal_model_defaults(kind: str) -> None:
    """An empty spec defaulted by the CRD is what the model fills in itself."""
    if kind == "SchemaVersion":
        pytest.skip("version is required: no empty spec")
    (version,) = crds()[kind]["spec"]["versions"]
    resource: dict[str, Any] = {"spec": {}}
    apply_defaults(version["schema"]["openAPIV3Schema"], resource)
    model = SPECS[kind].model_validate({})
    assert resource["spec"] == model.model_dump(by_alias=True, exclude_none=True, mode="json")


@pytest.mark.parametrize("cr", GOOD, ids=[d["metadata"]["name"] for d in GOOD])
def test_example_is_accepted_by_its_crd_and_the_model(cr: dict[str, Any]) -> None:
    cr = copy.deepcopy(cr)
    assert validate_cr(crds()[cr["kind"]], cr) == []
    SPECS[cr["kind"]].model_validate(cr["spec"])  # after API-server defaulting


def test_every_kind_has_a_minimal_and_a_full_example() -> None:
    names = {p.name for p in (ROOT / "examples").glob("*.yaml")}
    for kind in ("analyticspipeline", "samplingpolicy", "schemaversion"):
        assert {f"{kind}-minimal.yaml", f"{kind}-full.yaml"} <= names


@pytest.mark.parametrize("cr", BAD, ids=[d["metadata"]["name"] for d in BAD])
def test_invalid_example_is_refused_with_its_reason(cr: dict[str, Any]) -> None:
    errors = validate_cr(crds()[cr["kind"]], copy.deepcopy(cr))
    expected = cr["metadata"]["annotations"][EXPECT]
    assert any(expected in e for e in errors), errors


def _walk_rules(schema: Any) -> list[dict[str, str]]:
    if isinstance(schema, list):
        return [rule for item in schema for rule in _walk_rules(item)]
    if not isinstance(schema, dict):
        return []
    found = list(schema.get("x-kubernetes-validations", []))
    for key, value in schema.items():
        if key != "x-kubernetes-validations":
            found += _walk_rules(value)
    return found


CEL_MESSAGES = {
    rule["message"]
    for crd in crds().values()
    for version in crd["spec"]["versions"]
    for rule in _walk_rules(version["schema"]["openAPIV3Schema"])
}


@pytest.mark.parametrize("cr", BAD, ids=[d["metadata"]["name"] for d in BAD])
def test_invalid_example_is_refused_by_the_model_too(cr: dict[str, Any]) -> None:
    """The models carry the same rules as the CRD, CEL rules included (evaluated by the model)."""
    if "spec" not in cr:
        pytest.skip("no spec to give the model")
    expected = cr["metadata"]["annotations"][EXPECT]
    with pytest.raises(ValueError) as caught:
        SPECS[cr["kind"]].model_validate(cr["spec"])
    if expected in CEL_MESSAGES:  # a cross-field rule: the model says the very same words
        assert expected in str(caught.value)
