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
    """A Deployment's rollout as read back from its status (the facts, no verdict)."""

    name: str
    replicas: int  # desired (spec.replicas)
    ready_replicas: int
    updated_replicas: int | None = None  # None: the same as ready (a hand-made Component)
    total_replicas: int | None = None  # status.replicas: old pods still running count here
    exists: bool = True
    up_to_date: bool = True  # the Deployment controller has observed the latest spec
    failure: str | None = None  # a failing Progressing (or a ReplicaFailure) condition

    @property
    def waiting_for(self) -> str | None:
        """Why the rollout is not complete, or None when it is (kubectl rollout status's
        rules): updated = ready = desired, no old replicas left, no failed progress, and a
        Deployment scaled to zero is not a running component."""
        updated = self.ready_replicas if self.updated_replicas is None else self.updated_replicas
        total = updated if self.total_replicas is None else self.total_replicas
        if not self.exists:
            return "deployment not found"
        if self.failure is not None:
            return f"rollout failed: {self.failure}"
        if not self.up_to_date:
            return "the deployment controller has not observed the latest spec yet"
        if self.replicas == 0:
            return "scaled to 0 replicas"
        if updated < self.replicas:
            return f"{updated}/{self.replicas} replicas updated"
        if total > updated:
            return f"{total - updated} old replica(s) pending termination"
        if self.ready_replicas < self.replicas:
            return f"{self.ready_replicas}/{self.replicas} replicas ready"
        return None

    @property
    def ready(self) -> bool:
        return self.waiting_for is None

    def as_status(self) -> dict[str, Any]:
        updated = self.ready_replicas if self.updated_replicas is None else self.updated_replicas
        return {
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
            "updatedReplicas": updated,
            "ready": self.ready,
        }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def component_from_deployment(name: str, deployment: Mapping[str, Any] | None) -> Component:
    """The rollout of one Deployment. A missing one, one whose controller has not yet seen
    the latest spec (status.observedGeneration behind metadata.generation) or one whose
    Progressing condition failed (ProgressDeadlineExceeded) is not ready."""
    if deployment is None:
        return Component(name, replicas=0, ready_replicas=0, exists=False)
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = int(spec["replicas"] if spec.get("replicas") is not None else 1)
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    up_to_date = generation is None or (observed is not None and observed >= generation)
    return Component(
        name,
        replicas=wanted,
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        total_replicas=int(status.get("replicas") or 0),
        up_to_date=up_to_date,
        failure=_rollout_failure(status.get("conditions") or ()),
    )


def _rollout_failure(deployment_conditions: Iterable[Mapping[str, Any]]) -> str | None:
    for condition in deployment_conditions:
        kind, state = condition.get("type"), condition.get("status")
        if (kind == "Progressing" and state == "False") or (
            kind == "ReplicaFailure" and state == "True"
        ):
            reason, message = condition.get("reason") or kind, condition.get("message") or ""
            return f"{reason}: {message}" if message else str(reason)
    return None


def pipeline_conditions(
    components: Sequence[Component],
    *,
    problem: str | None = None,
    problem_reason: str = "ReconcileFailed",
    degraded: str | None = None,
    reconciling: bool = False,
) -> list[Condition]:
    """Ready / Progressing / Degraded for a pipeline, in the manner of CloudNativePG/Strimzi.

    Ready is True only when the last reconcile succeeded (`problem` is its failure, reported
    with `problem_reason` until a later reconcile succeeds), the latest spec has been
    reconciled (`reconciling` says it has not) and every component completed its rollout.
    `degraded` is a partial failure that leaves the pipeline running (e.g. Prometheus down).
    """
    waiting = [c for c in components if not c.ready]
    failed = [c for c in waiting if c.failure is not None]
    detail = "; ".join(f"{c.name}: {c.waiting_for}" for c in waiting)
    summary = ", ".join(f"{c.name} {c.ready_replicas}/{c.replicas}" for c in components)
    if failed:
        progressing = Condition("Progressing", False, "ProgressDeadlineExceeded", detail)
    elif waiting:
        progressing = Condition("Progressing", True, "RollingOut", detail)
    else:
        progressing = Condition("Progressing", False, "RolloutComplete", summary)
    if problem is not None:
        ready = Condition("Ready", False, problem_reason, problem)
    elif reconciling:
        ready = Condition("Ready", False, "Reconciling", "the latest spec is not reconciled yet")
    elif failed:
        ready = Condition("Ready", False, "RolloutFailed", detail)
    elif waiting:
        ready = Condition("Ready", False, "ComponentsNotReady", detail)
    else:
        ready = Condition("Ready", True, "AllComponentsReady", summary)
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
