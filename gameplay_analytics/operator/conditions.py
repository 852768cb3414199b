"""Status conditions of the standard Kubernetes shape, and component readiness: pure logic.

`kubectl wait --for=condition=Ready` reads these, so Ready is True only when every component
reports all its replicas ready for the generation the operator last applied.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Component",
    "Condition",
    "component_from_deployment",
    "merge_conditions",
    "now",
    "pipeline_conditions",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Component:
    """A Deployment's readiness as read back from its status."""

    name: str
    replicas: int
    ready_replicas: int
    exists: bool = True
    up_to_date: bool = True

    @property
    def ready(self) -> bool:
        return self.exists and self.up_to_date and self.ready_replicas >= self.replicas

    def as_status(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
            "ready": self.ready,
        }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def component_from_deployment(name: str, deployment: Mapping[str, Any] | None) -> Component:
    """Readiness of one Deployment; a missing one, or one whose controller has not yet seen
    the latest spec (status.observedGeneration behind metadata.generation), is not ready."""
    if deployment is None:
        return Component(name, replicas=0, ready_replicas=0, exists=False)
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    generation = deployment.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    up_to_date = generation is None or observed is None or observed >= generation
    return Component(
        name,
        replicas=wanted,
        ready_replicas=int(status.get("readyReplicas") or 0),
        up_to_date=up_to_date,
    )


def pipeline_conditions(
    components: Sequence[Component], *, problem: str | None = None, degraded: str | None = None
) -> list[Condition]:
    """Ready / Progressing / Degraded for a pipeline.

    `problem` is a reconcile failure (Ready False, reason ReconcileFailed); `degraded` a
    partial failure that leaves the pipeline running (e.g. Prometheus unreachable).
    """
    waiting = [c for c in components if not c.ready]
    if problem is not None:
        ready = Condition("Ready", False, "ReconcileFailed", problem)
        progressing = Condition("Progressing", False, "ReconcileFailed", problem)
    elif waiting:
        detail = "; ".join(
            f"{c.name}: deployment not found"
            if not c.exists
            else f"{c.name}: {c.ready_replicas}/{c.replicas} replicas ready"
            for c in waiting
        )
        ready = Condition("Ready", False, "ComponentsNotReady", detail)
        progressing = Condition("Progressing", True, "RollingOut", detail)
    else:
        summary = ", ".join(f"{c.name} {c.ready_replicas}/{c.replicas}" for c in components)
        ready = Condition("Ready", True, "AllComponentsReady", summary)
        progressing = Condition("Progressing", False, "RolloutComplete", summary)
    degraded_condition = (
        Condition("Degraded", True, "LoadSignalsUnavailable", degraded)
        if degraded
        else Condition("Degraded", False, "AsExpected", "")
    )
    return [ready, progressing, degraded_condition]


def merge_conditions(
    previous: Iterable[Mapping[str, Any]] | None,
    conditions: Iterable[Condition],
    *,
    generation: int | None,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """Conditions as status entries; lastTransitionTime moves only when the status flips."""
    old = {c.get("type"): c for c in previous or () if isinstance(c, Mapping)}
    stamp = at or now()
    merged = []
    for condition in conditions:
        status = {True: "True", False: "False", None: "Unknown"}[condition.status]
        before = old.get(condition.type)
        since = (
            before.get("lastTransitionTime", stamp)
            if before is not None and before.get("status") == status
            else stamp
        )
        entry: dict[str, Any] = {
            "type": condition.type,
            "status": status,
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        merged.append(entry)
    return merged
