"""Generate the three CustomResourceDefinitions in `crds/` from the pydantic models.

`python -m gameplay_analytics.operator.crdgen [DIR]` writes them; a test checks that the
committed files equal this output, so the models and the CRDs cannot drift apart.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from gameplay_analytics.operator import models

__all__ = ["KINDS", "CrdKind", "build_crds", "main", "structural_schema", "write_crds"]

# Keywords a structural schema keeps; pydantic's `title` and others are dropped.
_KEEP = (
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
)


class CrdKind:
    """One custom resource kind: its names, spec model and printer columns."""

    def __init__(
        self,
        *,
        kind: str,
        plural: str,
        short_name: str,
        spec: type[BaseModel],
        spec_required: bool,
        columns: list[dict[str, Any]],
        status: dict[str, Any],
    ) -> None:
        self.kind, self.plural, self.short_name = kind, plural, short_name
        self.spec, self.spec_required = spec, spec_required
        self.columns, self.status = columns, status

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{models.GROUP}"


def _condition_column(name: str, field: str, *, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
    }
    if priority:
        column["priority"] = priority
    return column


_READY = _condition_column("Ready", "status")
_REASON = _condition_column("Reason", "reason")
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

_CONDITION = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}


def _status(**properties: Any) -> dict[str, Any]:
    # preserve-unknown-fields: kopf keeps its own progress and handler results in status.
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "observedGeneration": {"type": "integer"},
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": _CONDITION,
            },
            **properties,
        },
    }


_HEARTBEAT_STATUS = {
    "type": "object",
    "properties": {
        "rate": {"type": "number"},
        "reason": {"type": "string"},
        "combatHighSince": {"type": "number"},
    },
}

_COMPONENT = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer"},
        "readyReplicas": {"type": "integer"},
        "updatedReplicas": {"type": "integer"},
        "ready": {"type": "boolean"},
    },
}

_NATS_STATUS = {
    "type": "object",
    "description": "the pipeline's names on NATS",
    "properties": {
        key: {"type": "string"}
        for key in ("stream", "eventsSubject", "dlqSubject", "configBucket", "consumer")
    },
}

_GATEWAY = {
    "type": "object",
    "properties": {
        **_COMPONENT["properties"],  # type: ignore[dict-item]
        "endpoint": {"type": "string", "description": "in-cluster WebSocket URL for SDKs"},
    },
}

KINDS: tuple[CrdKind, ...] = (
    CrdKind(
        kind="AnalyticsPipeline",
        plural="analyticspipelines",
        short_name="ap",
        spec=models.AnalyticsPipelineSpec,
        spec_required=False,
        columns=[
            _READY,
            _REASON,
            {"name": "Gateways", "type": "integer", "jsonPath": ".status.gateway.readyReplicas"},
            {
                "name": "Aggregators",
                "type": "integer",
                "jsonPath": ".status.aggregator.readyReplicas",
            },
            {
                "name": "Heartbeat",
                "type": "number",
                "jsonPath": ".status.heartbeat.rate",
                "priority": 1,
            },
            {"name": "WarmStore", "type": "string", "jsonPath": ".status.warmStore"},
            {"name": "Stream", "type": "string", "jsonPath": ".status.nats.stream", "priority": 1},
            _AGE,
        ],
        status=_status(
            gateway=_GATEWAY,
            aggregator=_COMPONENT,
            reconcileError={
                "type": "object",
                "description": "the last reconcile's failure; absent once one succeeds",
                "properties": {"reason": {"type": "string"}, "message": {"type": "string"}},
            },
            nats=_NATS_STATUS,
            warmStore={
                "type": "string",
                "description": "where the aggregators export Parquet, or why it is off",
            },
            samplingVersion={"type": "string"},
            heartbeat=_HEARTBEAT_STATUS,
            loadSignals={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        ),
    ),
    CrdKind(
        kind="SamplingPolicy",
        plural="samplingpolicies",
        short_name="sp",
        spec=models.SamplingPolicySpec,
        spec_required=False,
        columns=[
            _READY,
            _REASON,
            {"name": "SamplingVersion", "type": "string", "jsonPath": ".status.samplingVersion"},
            {"name": "Heartbeat", "type": "number", "jsonPath": ".status.heartbeat.rate"},
            {
                "name": "Why",
                "type": "string",
                "jsonPath": ".status.heartbeat.reason",
                "priority": 1,
            },
            _AGE,
        ],
        status=_status(
            samplingVersion={"type": "string"},
            appliedAt={"type": "string", "format": "date-time"},
            heartbeat=_HEARTBEAT_STATUS,
            appliedSpec={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        ),
    ),
    CrdKind(
        kind="SchemaVersion",
        plural="schemaversions",
        short_name="asv",
        spec=models.SchemaVersionSpec,
        spec_required=True,
        columns=[
            {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
            {"name": "Accepted", "type": "string", "jsonPath": ".status.phase"},
            _REASON,
            _condition_column("Message", "message", priority=1),
            _AGE,
        ],
        status=_status(
            phase={"type": "string", "enum": ["Pending", "Accepted", "Rejected"]},
            problems={"type": "array", "items": {"type": "string"}},
            acceptedSchema={
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "the document as accepted: the one published, never changed",
            },
        ),
    ),
)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as a Kubernetes structural schema.

    `$ref`s are inlined (structural schemas have none), `Optional[X]` becomes X (absent is
    how Kubernetes says "none"), `int | str` becomes `x-kubernetes-int-or-string`, and an
    object field with a default factory gets that default so the API server fills in the
    nested defaults and `kubectl get -o yaml` shows the effective configuration.
    """
    document = model.model_json_schema(by_alias=True)
    schema = _convert(document, document.get("$defs", {}))
    _factory_defaults(model, schema)
    return schema


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        types = {b.get("type") for b in branches}
        if types == {"integer", "string"}:
            out = _keep(rest)
            out.pop("type", None)
            if out.get("default", ...) is None:
                del out["default"]
            pattern = out.pop("pattern", None) or next(
                (b["pattern"] for b in branches if "pattern" in b), None
            )
            string = {"type": "string", **({"pattern": pattern} if pattern else {})}
            return {
                **out,
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, string],
            }
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {types} structurally")
        return _convert({**branches[0], **rest}, defs)
    out = _keep(node)
    if out.get("default", ...) is None:
        del out["default"]  # an absent optional field, not a null value
    if node.get("type") == "object":
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return out
        properties = {
            name: _convert(child, defs) for name, child in node.get("properties", {}).items()
        }
        if properties:
            out["properties"] = properties
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = _convert(extra, defs)
        elif not properties:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        out["items"] = _convert(node["items"], defs)
    return out


def _factory_defaults(model: type[BaseModel], schema: dict[str, Any]) -> None:
    """Write the defaults pydantic leaves out of JSON Schema: those made by a default_factory."""
    for name, field in model.model_fields.items():
        sub = schema.get("properties", {}).get(field.alias or name)
        if sub is None:
            continue
        if field.default_factory is not None:
            value = field.get_default(call_default_factory=True, validated_data={})
            if isinstance(value, BaseModel):
                sub["default"] = value.model_dump(by_alias=True, exclude_none=True, mode="json")
        for inner in _models_in(field.annotation):
            target = sub.get("additionalProperties") if _is_mapping(field.annotation) else sub
            if isinstance(target, dict):
                _factory_defaults(inner, target)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict


def _keep(node: dict[str, Any]) -> dict[str, Any]:
    # Readable order: type and description first, the rest as listed in _KEEP.
    out = {k: node[k] for k in _KEEP if k in node}
    # JSON Schema's numeric exclusive bounds are OpenAPI 3.0's boolean flags on min/max.
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(flag), int | float) and not isinstance(out[flag], bool):
            out[bound], out[flag] = out[flag], True
    return {k: out[k] for k in _KEEP if k in out}


def build_crd(kind: CrdKind) -> dict[str, Any]:
    spec_schema = structural_schema(kind.spec)
    if not kind.spec_required:
        spec_schema["default"] = {}
    root: dict[str, Any] = {
        "type": "object",
        "properties": {"spec": spec_schema, "status": kind.status},
    }
    if kind.spec_required:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": ["gameplay-analytics"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def build_crds() -> dict[str, dict[str, Any]]:
    """{file name: CRD} for every kind."""
    return {f"{kind.plural}.yaml": build_crd(kind) for kind in KINDS}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &id001 anchors: shared sub-schemas are written out in full


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `python -m gameplay_analytics.operator.crdgen`; do not edit.\n"
    return header + yaml.dump(crd, Dumper=_Dumper, sort_keys=False, width=100)


def write_crds(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, crd in build_crds().items():
        path = folder / name
        path.write_text(render(crd))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "crds"
    for path in write_crds(folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
