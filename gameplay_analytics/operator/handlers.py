"""The kopf handlers: each reads the resource and calls one function of `reconcile`.

They are registered into an explicit registry by `register`, so that the resync interval is
a setting and nothing is registered at import time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from gameplay_analytics.operator import (
    heartbeat,
    metrics,
    natsconfig,
    reconcile,
    schemaversions,
    statuspatch,
)
from gameplay_analytics.operator.manifests import MANAGED_BY
from gameplay_analytics.operator.models import GROUP, VERSION

__all__ = ["register"]

PIPELINES = (GROUP, VERSION, "analyticspipelines")
POLICIES = (GROUP, VERSION, "samplingpolicies")
SCHEMAS = (GROUP, VERSION, "schemaversions")
DELETE_RETRIES = 6  # then the pipeline is released without its NATS objects removed
DELETE_BACKOFF_S = 5.0


def register(registry: kopf.OperatorRegistry, *, resync_seconds: float) -> None:
    """Register every handler; `resync_seconds` is the drift-repair timer's interval."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the `kubernetes` client the reconcilers use.
        return kopf.login_via_client(**kwargs)

    @kopf.on.resume(*PIPELINES, registry=registry)
    @kopf.on.create(*PIPELINES, registry=registry)
    @kopf.on.update(*PIPELINES, registry=registry)
    async def pipeline_changed(body: kopf.Body, **_: Any) -> dict[str, str]:
        async with metrics.reconciling("AnalyticsPipeline"):
            return await reconcile.reconcile_pipeline(body)

    @kopf.on.delete(
        *PIPELINES,
        registry=registry,
        retries=DELETE_RETRIES,
        backoff=DELETE_BACKOFF_S,
        when=lambda spec, **_: spec.get("deletionPolicy") == "Delete",
    )
    async def pipeline_deleted(body: kopf.Body, **_: Any) -> None:
        # kopf's finalizer (every pipeline has it: timers and daemons require one) holds the
        # pipeline until this is done. NATS unreachable: retried, then the pipeline goes
        # anyway (a finalizer must not strand a namespace) and the stream stays.
        try:
            await reconcile.delete_pipeline_nats(body)
        except natsconfig.NatsError as exc:
            raise kopf.TemporaryError(str(exc), delay=DELETE_BACKOFF_S) from None

    @kopf.timer(
        *PIPELINES,
        interval=resync_seconds,
        initial_delay=resync_seconds,
        idle=None,
        registry=registry,
    )
    async def pipeline_resync(body: kopf.Body, **_: Any) -> None:
        # Drift repair: objects edited or deleted by hand are put back.
        async with metrics.reconciling("AnalyticsPipeline"):
            await reconcile.reconcile_pipeline(body)

    @kopf.daemon(
        *PIPELINES,
        registry=registry,
        cancellation_timeout=5.0,
        when=lambda spec, **_: bool(spec.get("monitoring", {}).get("prometheusUrl")),
    )
    async def load_signals(
        name: str, namespace: str | None, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        while not stopped:
            if namespace:
                await heartbeat.step_heartbeat(namespace, name)
            interval = float(spec.get("monitoring", {}).get("loadSignalIntervalSeconds", 30))
            await stopped.wait(interval)

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        registry=registry,
    )
    async def deployment_event(body: kopf.Body, **_: Any) -> None:
        # Readiness comes from the Deployments: Progressing → Ready without waiting a resync.
        await statuspatch.refresh_owner_status(body)

    @kopf.on.resume(*POLICIES, registry=registry)
    @kopf.on.create(*POLICIES, registry=registry)
    @kopf.on.update(*POLICIES, registry=registry)
    async def policy_changed(body: kopf.Body, **_: Any) -> None:
        async with metrics.reconciling("SamplingPolicy"):
            await reconcile.reconcile_policy(body)

    @kopf.on.resume(*SCHEMAS, registry=registry)
    @kopf.on.create(*SCHEMAS, registry=registry)
    @kopf.on.update(*SCHEMAS, registry=registry)
    async def schema_version_changed(body: kopf.Body, **_: Any) -> dict[str, str]:
        async with metrics.reconciling("SchemaVersion"):
            phase = await schemaversions.reconcile_schema_version(body)
            await reconcile.republish(body["metadata"]["namespace"])
            return {"phase": phase}

    @kopf.on.event(*SCHEMAS, registry=registry)
    @kopf.on.event(*POLICIES, registry=registry)
    async def gone(event: kopf.RawEvent, namespace: str | None, **_: Any) -> None:
        # No finalizers on these (children go by owner references): deletion is an event:
        # republish without the deleted version, or with the defaults instead of the policy.
        if event.get("type") == "DELETED" and namespace:
            await reconcile.republish(namespace)

    _ = (
        login,
        pipeline_changed,
        pipeline_deleted,
        pipeline_resync,
        load_signals,
        deployment_event,
        policy_changed,
        schema_version_changed,
        gone,
        asyncio,
    )
