"""Offline Kubernetes checks for the chart tests: render with the real Helm library, validate
objects against Kubernetes' own OpenAPI schemas and custom resources against their CRDs.

Follows ../shared/recipes/kubernetes-offline (recipes 2 and 3): `kubernetes_validate.validate`
stops at the first error, so the schemas are loaded here and every error is collected.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import helm_python
import jsonschema
import kubernetes_validate.utils as kvu
import referencing
import yaml

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

_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_CEL = celpy.Environment()


def _to_jsonschema(s: Doc) -> Doc:
    """Structural schema (OpenAPI 3.0 subset + x-kubernetes-*) -> JSON Schema draft 4."""
    s = dict(s)
    if "properties" in s:
        s["properties"] = {k: _to_jsonschema(v) for k, v in s["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            s[key] = _to_jsonschema(s[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [_to_jsonschema(x) for x in s[key]]
    if s.get("x-kubernetes-embedded-resource"):
        s["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **s.get("properties", {}),
        }
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in s:
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("x-kubernetes-list-type") == "set":
        s["uniqueItems"] = True
    # The API server prunes unknown fields (or rejects them with fieldValidation=Strict): reject.
    if (
        s.get("type") == "object"
        and "additionalProperties" not in s
        and not s.get("x-kubernetes-preserve-unknown-fields")
    ):
        s["additionalProperties"] = False
    if s.pop("nullable", False):
        s = {"anyOf": [{"type": "null"}, s]}
    return s


def _list_map_keys(validator: Any, keys: list[str], instance: Any, schema: Doc) -> Iterator[Any]:
    seen = set()
    for item in instance if isinstance(instance, list) else []:
        key = json.dumps([item.get(k) for k in keys]) if isinstance(item, dict) else None
        if key in seen:
            yield jsonschema.ValidationError(f"duplicate entry with keys {keys}: {key}")
        seen.add(key)


def _cel_rules(validator: Any, rules: list[Doc], instance: Any, schema: Doc) -> Iterator[Any]:
    for rule in rules:
        if "oldSelf" in rule["rule"]:
            continue  # transition rules only run on updates
        try:
            program = _CEL.program(_CEL.compile(rule["rule"]))
            ok = program.evaluate({"self": celpy.json_to_cel(instance)})
        except Exception as exc:  # a rule that cannot evaluate is a failure, with the reason
            ok, rule = False, {**rule, "message": f"{rule['rule']!r} failed to evaluate: {exc}"}
        if not ok:
            yield jsonschema.ValidationError(rule.get("message") or f"failed rule: {rule['rule']}")


_CRDValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {"x-kubernetes-list-map-keys": _list_map_keys, "x-kubernetes-validations": _cel_rules},
)


def _apply_defaults(s: Doc, obj: Any) -> None:
    if isinstance(obj, dict):
        for key, sub in s.get("properties", {}).items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                _apply_defaults(sub, obj[key])
    elif isinstance(obj, list) and isinstance(s.get("items"), dict):
        for item in obj:
            _apply_defaults(s["items"], item)


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
    version = cr["apiVersion"].rpartition("/")[2]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served", True)}
    if version not in served:
        return [f"version {version} is not served (served: {sorted(served)})"]
    raw = served[version]["schema"]["openAPIV3Schema"]
    cr = copy.deepcopy(cr)
    _apply_defaults(raw, cr)
    schema = _to_jsonschema(raw)
    schema["properties"] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 253, "pattern": _DNS1123_SUBDOMAIN}
            },
        },
        **schema.get("properties", {}),
    }
    validator = _CRDValidator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(cr), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def load_yaml_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
