"""Kubernetes' own OpenAPI schemas (kubernetes-validate), strict, every error reported."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate.utils as kvu
import referencing

K8S_VERSION = "1.31"  # the oldest release the CRDs' CEL and autoscaling/v2 features target


@functools.cache
def _version() -> str:
    return [v for v in kvu.all_versions() if kvu.major_minor(v) <= K8S_VERSION][-1]


@functools.cache
def _registry() -> referencing.Registry[Any]:
    base = f"kubernetes-json-schema/v{_version()}-local-strict"
    definitions = kvu.schema_contents(f"{base}/_definitions.json", K8S_VERSION)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


def has_schema(doc: dict[str, Any]) -> bool:
    try:
        _schema(doc["apiVersion"], doc["kind"])
    except FileNotFoundError:
        return False
    return True


@functools.cache
def _schema(api_version: str, kind: str) -> Any:
    base = f"kubernetes-json-schema/v{_version()}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 -> apps-v1
    return kvu.schema_contents(f"{base}/{kind.lower()}-{api}.json", K8S_VERSION)


def errors(doc: dict[str, Any]) -> list[str]:
    """Every schema error of `doc` (kubernetes_validate.validate stops at the first)."""
    validator = jsonschema.Draft202012Validator(
        _schema(doc["apiVersion"], doc["kind"]), registry=_registry()
    )
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]
