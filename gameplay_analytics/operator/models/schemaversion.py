"""The SchemaVersion spec: one immutable version of the event schema."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from gameplay_analytics.operator.models.base import SEMVER_PATTERN, Spec, cel_rules
from gameplay_analytics.operator.models.refs import ConfigMapKeyRef

__all__ = ["SchemaSource", "SchemaVersionSpec"]


class SchemaSource(Spec):
    config_map_key_ref: ConfigMapKeyRef


class SchemaVersionSpec(Spec):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "has(self.schema) != has(self.schemaFrom)",
                "set exactly one of schema (inline) or schemaFrom (a ConfigMap)",
            ),
            (
                "self == oldSelf",
                "a SchemaVersion is immutable: publish a new version as a new resource "
                "(a Rejected one is deleted and created again)",
            ),
        )
    )

    version: str = Field(pattern=SEMVER_PATTERN, description="MAJOR.MINOR.PATCH")
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="the JSON Schema document, inline",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    schema_from: SchemaSource | None = None
