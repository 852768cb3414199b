"""An AnalyticsPipeline's status, decided from what was read: pure, no I/O.

Two kinds of writer call `pipeline_status`: a real reconcile (`reconciled` given: it stamps
`observedGeneration` and records its outcome, success or failure) and the refresh paths
(a Deployment event, a load-signal step: `reconciled` None), which re-read readiness but keep
the last reconcile's outcome and generation as they were. So a reconcile error persists
until a later reconcile succeeds, and `observedGeneration` is only ever a reconciled one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from gameplay_analytics.operator import conditions

__all__ = ["Reconciled", "pipeline_status"]


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    """The outcome of one real reconcile of `generation`: `problem` None means it succeeded;
    `reason` is the Ready condition's reason for the problem."""

    generation: int | None
    problem: str | None = None
    reason: str = "ReconcileFailed"


def pipeline_status(
    previous: Mapping[str, Any],
    components: Sequence[conditions.Component],
    *,
    generation: int | None,
    reconciled: Reconciled | None = None,
    extra: Mapping[str, Any] | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """The status merge patch. `previous` is the status as it is now; `extra` carries fields
    the caller owns (samplingVersion, heartbeat, loadSignals, endpoint, names)."""
    if reconciled is not None:
        observed, problem, reason = reconciled.generation, reconciled.problem, reconciled.reason
    else:
        observed = previous.get("observedGeneration")
        error = previous.get("reconcileError") or {}
        problem, reason = error.get("message") or None, error.get("reason") or "ReconcileFailed"
    signals = {**(previous.get("loadSignals") or {}), **((extra or {}).get("loadSignals") or {})}
    degraded = None if signals.get("ok", True) else signals.get("message")
    reconciling = generation is not None and observed != generation
    new = conditions.pipeline_conditions(
        components,
        problem=problem,
        problem_reason=reason,
        degraded=degraded,
        reconciling=reconciling,
    )
    status: dict[str, Any] = {
        **(extra or {}),
        "conditions": conditions.merge_conditions(
            previous.get("conditions"), new, generation=observed, at=at
        ),
        **{c.name: {**((extra or {}).get(c.name) or {}), **c.as_status()} for c in components},
    }
    if reconciled is not None:
        status["observedGeneration"] = observed
        # None deletes the field (merge patch): it is there only while the last one failed.
        status["reconcileError"] = (
            None if problem is None else {"reason": reason, "message": problem}
        )
    return status
