"""Writing an AnalyticsPipeline's status: read the Deployments, decide (`status`), patch.

Reconciles call `refresh_pipeline_status` with their outcome; the refresh paths (a managed
Deployment changed, a load-signal step) call it without one and keep the last outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameplay_analytics.operator import conditions, kube
from gameplay_analytics.operator import status as status_decision
from gameplay_analytics.operator.naming import object_names

__all__ = ["refresh_owner_status", "refresh_pipeline_status"]


async def refresh_pipeline_status(
    body: Mapping[str, Any],
    *,
    reconciled: status_decision.Reconciled | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Conditions and component readiness from the Deployments as they are now; only a real
    reconcile passes `reconciled` (see `status.pipeline_status`)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    names = object_names(name)
    components = [
        conditions.component_from_deployment(
            component, await kube.get(kind="Deployment", namespace=namespace, name=deployment)
        )
        for component, deployment in (("gateway", names.gateway), ("aggregator", names.aggregator))
    ]
    status = status_decision.pipeline_status(
        body.get("status") or {},
        components,
        generation=meta.get("generation"),
        reconciled=reconciled,
        extra=extra,
    )
    await kube.patch_status(kind="AnalyticsPipeline", namespace=namespace, name=name, status=status)


async def refresh_owner_status(deployment: Mapping[str, Any]) -> None:
    """A managed Deployment changed: re-read its pipeline's readiness."""
    meta = deployment.get("metadata", {})
    for owner in meta.get("ownerReferences") or ():
        if owner.get("kind") == "AnalyticsPipeline":
            body = await kube.get(
                kind="AnalyticsPipeline", namespace=meta.get("namespace"), name=owner["name"]
            )
            if body is not None and not body["metadata"].get("deletionTimestamp"):
                await refresh_pipeline_status(body)
