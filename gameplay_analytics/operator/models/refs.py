"""References to other objects (Secret keys, ConfigMap keys) and container resources."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from gameplay_analytics.operator.models.base import QUANTITY_PATTERN, Spec

__all__ = [
    "ConfigMapKeyRef",
    "LocalObjectRef",
    "Quantities",
    "Quantity",
    "ResourcesSpec",
    "SecretKeyRef",
]


class SecretKeyRef(Spec):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Secret name")
    key: str = Field(min_length=1, max_length=253, description="key inside the Secret")


class LocalObjectRef(Spec):
    name: str = Field(min_length=1, max_length=253)


class ConfigMapKeyRef(Spec):
    name: str = Field(min_length=1, max_length=253, description="ConfigMap name")
    key: str = Field(min_length=1, max_length=253, description="key holding the JSON Schema")


Quantity = Annotated[
    Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)] | int,
    Field(union_mode="left_to_right"),
]


class Quantities(Spec):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ResourcesSpec(Spec):
    """Container requests and limits (cpu, memory), as Kubernetes quantities."""

    requests: Quantities = Field(default_factory=Quantities)
    limits: Quantities = Field(default_factory=Quantities)
