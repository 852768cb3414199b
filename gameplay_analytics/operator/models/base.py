"""What every custom-resource model shares: the API group and version, the patterns, the
wire convention (camelCase, unknown keys refused) and the CEL rules checked in Python too."""

from __future__ import annotations

import functools
import json
from typing import Any, Self

import celpy
from celpy.adapter import json_to_cel
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "DNS_LABEL",
    "GROUP",
    "NATS_NAME",
    "NATS_SUBJECT",
    "QUANTITY_PATTERN",
    "SEMVER_PATTERN",
    "VERSION",
    "CelChecked",
    "Spec",
    "cel_rules",
]

GROUP = "analytics.gameplay.dev"
VERSION = "v1alpha1"
NATS_NAME = r"^[A-Za-z0-9_-]+$"
NATS_SUBJECT = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
SEMVER_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel_rules(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class CelChecked(BaseModel):
    """Evaluates the CEL rules a model puts in its CRD (`x-kubernetes-validations`) with
    cel-python, on the model's wire form with defaults applied and unset fields absent, as the
    API server sees it: a spec `kubectl apply` would refuse, the model refuses with the same
    message, and each rule is written once."""

    @model_validator(mode="after")
    def _x_kubernetes_validations(self) -> Self:
        if _cel_programs(type(self)):
            wire = self.model_dump(mode="json", by_alias=True, exclude_none=True)
            failed = _cel_failure(type(self), json.dumps(wire, sort_keys=True))
            if failed is not None:
                raise ValueError(failed)
        return self


class Spec(CelChecked):
    """camelCase on the wire (Kubernetes style), snake_case in Python; unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


_CEL = celpy.Environment()


@functools.lru_cache(maxsize=4096)
def _cel_failure(cls: type[BaseModel], wire: str) -> str | None:
    """The message of the first rule `wire` breaks, or None. Cached: cel-python takes
    milliseconds a rule, and the operator parses the same specs (and every default section)
    over and over."""
    document = json_to_cel(json.loads(wire))
    for program, message in _cel_programs(cls):
        if not program.evaluate({"self": document}):
            return str(message)
    return None


@functools.cache
def _cel_programs(cls: type[BaseModel]) -> tuple[tuple[Any, str], ...]:
    extra = cls.model_config.get("json_schema_extra")
    rules: Any = extra.get("x-kubernetes-validations", []) if isinstance(extra, dict) else []
    return tuple(
        (_CEL.program(_CEL.compile(str(rule["rule"]))), str(rule["message"]))
        for rule in rules
        if "oldSelf" not in str(rule["rule"])  # transition rules only run on updates
    )
