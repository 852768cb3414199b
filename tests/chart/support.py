"""Offline Kubernetes checks for the chart tests: render with the real Helm library, validate
objects against Kubernetes' own OpenAPI schemas and custom resources against their CRDs.

Follows ../shared/recipes/kubernetes-offline (recipes 2 and 3): `kubernetes_validate.validate`
stops at the first error, so the schemas are loaded here and every error is collected.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate.utils as kvu
import referencing
import yaml

from tests.operator import crvalidate

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "gameplay-analytics"
RELEASE, NAMESPACE = "ga", "analytics"

Doc = dict[str, Any]


def chart_metadata() -> Doc:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def min_kube_version() -> str:
    """The lowest Kubernetes minor the chart declares (`kubeVersion: ">=1.29.0-0"` -> "1.29")."""
    match = re.search(r">=\s*v?(\d+)\.(\d+)", chart_metadata()["kubeVersion"])
    assert match, "Chart.yaml kubeVersion must state a lower bound (>=X.Y)"
    return f"{match[1]}.{match[2]}"


def newest_kube_version() -> str:
    return kvu.major_minor(kvu.all_versions()[-1])


def render(
    values: Doc | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE
) -> tuple[list[Doc], list[Doc], str]:
    """(objects from templates/, CRDs from crds/, NOTES.txt) for these values."""
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values=values or {}, name=name, namespace=namespace)
        crds = [d for c in chart.crds for d in yaml.safe_load_all(c["data"]) if d]
    notes = "".join(text for path, text in rendered.items() if path.endswith("NOTES.txt"))
    docs = [
        d
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]
    return docs, crds, notes


def find(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


# --- Kubernetes' own schemas (recipe 2) -----------------------------------------------------


@functools.cache
def _registry(version: str) -> tuple[str, referencing.Registry]:
    full = [v for v in kvu.all_versions() if kvu.major_minor(v) <= version][-1]
    base = f"kubernetes-json-schema/v{full}-local-strict"  # -strict: unknown fields are errors
    definitions = kvu.schema_contents(f"{base}/_definitions.json", version)
    return base, referencing.Resource.from_contents(definitions) @ referencing.Registry()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    base, registry = _registry(version)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 -> apps-v1
    schema = kvu.schema_contents(f"{base}/{kind.lower()}-{api}.json", version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def has_builtin_schema(doc: Doc, version: str) -> bool:
    try:
        _validator(version, doc["kind"], doc["apiVersion"])
    except FileNotFoundError:
        return False
    return True


def k8s_errors(docs: list[Doc], version: str) -> list[str]:
    """Every schema error of every object with a built-in schema, as `Kind/name: path: msg`."""
    problems = []
    for doc in docs:
        if not has_builtin_schema(doc, version):
            continue  # a custom resource: checked against its CRD instead
        name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
        validator = _validator(version, doc["kind"], doc["apiVersion"])
        problems += [
            f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
    return problems


# --- custom resources against their CRD (recipe 3) ------------------------------------------


def crd_for(crds: list[Doc], cr: Doc) -> Doc | None:
    group = cr["apiVersion"].rpartition("/")[0]
    for crd in crds:
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == cr["kind"]:
            return crd
    return None


def cr_errors(crds: list[Doc], cr: Doc) -> list[str]:
    """Errors of one custom resource against its CRD, after the API server's defaulting."""
    crd = crd_for(crds, cr)
    if crd is None:
        return [f"no CRD defines {cr['apiVersion']} {cr['kind']}"]
    return crvalidate.validate_cr(crd, copy.deepcopy(cr))


def load_yaml_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
