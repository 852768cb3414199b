"""SchemaVersions: the compatibility gate's verdict in status, and the accepted documents.

An accepted document is kept in `status.acceptedSchema` and that copy is what gets
published: the spec is immutable (CEL) and an edit of a referenced ConfigMap does not change
what was accepted. After a verdict the caller republishes to the namespace's pipelines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import registry as schema_registry
from gameplay_analytics.operator import conditions, kube
from gameplay_analytics.operator.models import SchemaVersionSpec
from gameplay_analytics.operator.schemagate import review

__all__ = ["accepted_schemas", "reconcile_schema_version"]


async def accepted_schemas(namespace: str) -> dict[str, Mapping[str, Any]]:
    """The versions gateways accept: the shipped released ones and every Accepted
    SchemaVersion of the namespace, as accepted (status.acceptedSchema: immutable)."""
    accepted: dict[str, Mapping[str, Any]] = dict(schema_registry.released_schemas())
    for item in await kube.list_objects(kind="SchemaVersion", namespace=namespace):
        status = item.get("status") or {}
        if status.get("phase") == "Accepted":
            document = status.get("acceptedSchema") or await _schema_document(
                namespace, item.get("spec") or {}
            )
            if document is not None:
                accepted[str(item["spec"]["version"])] = document
    return accepted


async def reconcile_schema_version(body: Mapping[str, Any]) -> str:
    """Gate the version against the accepted ones of its major; publish it when accepted.
    Returns the phase. A rejected version is never published (and its status says why);
    the caller republishes to the namespace's pipelines."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = SchemaVersionSpec.model_validate(body.get("spec") or {})
    previous = body.get("status") or {}
    generation = meta.get("generation")
    try:
        document = await _schema_document(namespace, body.get("spec") or {})
    except ValueError as exc:
        document, problems = None, [str(exc)]
    else:
        others = await accepted_schemas(namespace)
        if previous.get("phase") == "Accepted":
            others.pop(spec.version, None)  # a re-check compares with the others, not itself
        problems = review(spec.version, document, others)
    kept = previous.get("acceptedSchema") if previous.get("phase") == "Accepted" else None
    if kept is not None and document != kept:
        # The spec is immutable (CEL); its ConfigMap is not. The accepted document stays in
        # force (it is the one in status that gets published) and the edit is reported.
        document, problems = kept, []
        ignored = (
            f"the document changed after {spec.version} was accepted; the accepted one stays "
            "in force: publish the change as a new version"
        )
    else:
        ignored = None
    phase = "Rejected" if problems else "Accepted"
    condition = (
        conditions.Condition("Ready", False, "IncompatibleChange", "; ".join(problems))
        if problems
        else conditions.Condition(
            "Ready", True, "Accepted", ignored or f"{spec.version} is compatible"
        )
    )
    await kube.patch_status(
        kind="SchemaVersion",
        namespace=namespace,
        name=name,
        status={
            "observedGeneration": generation,
            "phase": phase,
            "problems": problems,
            "acceptedSchema": None if problems else document,
            "conditions": conditions.merge_conditions(
                previous.get("conditions"), [condition], generation=generation
            ),
        },
    )
    return phase


async def _schema_document(namespace: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    if spec.get("schema") is not None:
        return dict(spec["schema"])
    ref = (spec.get("schemaFrom") or {}).get("configMapKeyRef")
    if ref is None:
        return None
    config_map = await kube.get(kind="ConfigMap", namespace=namespace, name=ref["name"])
    text = ((config_map or {}).get("data") or {}).get(ref["key"])
    if text is None:
        raise ValueError(f"ConfigMap {ref['name']!r} has no key {ref['key']!r}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"ConfigMap {ref['name']!r} key {ref['key']!r}: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"ConfigMap {ref['name']!r} key {ref['key']!r}: not a JSON object")
    return document
