"""One reconcile of each kind: read what the cluster holds, call the pure functions, apply.

The kopf handlers in `handlers` are one-liners over these. Each function is idempotent and
safe to run concurrently with itself for another object: objects are compared before any
write, and KV values are written only when they change.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import pydantic

from gameplay_analytics import sampling
from gameplay_analytics.contract import registry as schema_registry
from gameplay_analytics.operator import (
    conditions,
    kube,
    loadsignals,
    natsclaims,
    natsconfig,
    policy,
    workloads,
)
from gameplay_analytics.operator import metrics as operator_metrics
from gameplay_analytics.operator import status as status_decision
from gameplay_analytics.operator.manifests import (
    Pipeline,
    SamplingState,
    config_values,
    desired_objects,
    gateway_endpoint,
    object_names,
    prunable_objects,
)
from gameplay_analytics.operator.models import AnalyticsPipelineSpec, SchemaVersionSpec
from gameplay_analytics.operator.naming import nats_names
from gameplay_analytics.operator.schemagate import review

__all__ = [
    "pipelines_in",
    "reconcile_pipeline",
    "reconcile_policy",
    "reconcile_schema_version",
    "refresh_pipeline_status",
    "step_heartbeat",
]

log = logging.getLogger(__name__)

MONITORING_CRDS = (
    "servicemonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
)


# -- AnalyticsPipeline ---------------------------------------------------------------------------


def as_pipeline(body: Mapping[str, Any]) -> Pipeline:
    meta = body["metadata"]
    spec = AnalyticsPipelineSpec.model_validate(body.get("spec") or {})
    return Pipeline(name=meta["name"], namespace=meta["namespace"], spec=spec)


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """The controller reference that makes Kubernetes delete the object with its pipeline.
    (blockOwnerDeletion needs `update` on analyticspipelines/finalizers: see rbac.)"""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def reconcile_pipeline(body: Mapping[str, Any]) -> dict[str, Any]:
    """Apply every owned object, publish the rules and schemas to NATS, write the status.

    A failure to reach NATS does not stop the Kubernetes objects from being applied; it is
    reported as Ready=False with the reason, and the next resync tries again.
    """
    pipeline = as_pipeline(body)
    status = body.get("status") or {}
    rate = (status.get("heartbeat") or {}).get("rate")
    state, problem = await _sampling_for(pipeline, heartbeat_rate=rate)
    reason = "ReconcileFailed"
    schemas = await accepted_schemas(pipeline.namespace)
    monitoring = pipeline.spec.monitoring.service_monitor and all(
        [await kube.crd_exists(name) for name in MONITORING_CRDS]
    )
    secrets = {
        name: await _secret_data(pipeline.namespace, name)
        for component in ("gateway", "aggregator")
        for name in workloads.secret_refs(pipeline, component)
    }
    outcomes: dict[str, str] = {}
    reconciled = status_decision.Reconciled(body["metadata"].get("generation"), problem)
    wanted = desired_objects(pipeline, state, schemas, monitoring=monitoring, secrets=secrets)
    for obj in wanted:
        obj["metadata"]["ownerReferences"] = [owner_reference(body)]
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            outcomes[key] = await kube.ensure(obj)
        except kube.ApiError as exc:
            # Recorded (it stays until a reconcile succeeds), then raised for kopf's retry.
            failed = dataclasses.replace(reconciled, problem=f"applying {key}: {exc}")
            await refresh_pipeline_status(body, reconciled=failed)
            raise
    for kind, name in prunable_objects(pipeline, wanted):
        if await _delete_owned(kind, pipeline.namespace, name, owner_uid=body["metadata"]["uid"]):
            outcomes[f"{kind}/{name}"] = "pruned"
    names = nats_names(pipeline)
    try:
        creds = await _nats_creds(pipeline)
        await natsconfig.ensure_pipeline(
            pipeline.spec.nats, names, owner=owner_mark_of(pipeline), creds=creds
        )
        await natsconfig.publish_config(
            pipeline.spec.nats.url,
            config_values(state, schemas),
            bucket=names.config_bucket,
            creds=creds,
        )
    except natsconfig.NamesInUse as exc:
        problem, reason = str(exc), natsclaims.COLLISION_REASON
    except natsconfig.NatsError as exc:
        problem = str(exc)
    changed = {k: v for k, v in outcomes.items() if v != "unchanged"}
    if changed:
        log.info("pipeline %s/%s: %s", pipeline.namespace, pipeline.name, changed)
    await refresh_pipeline_status(
        body,
        reconciled=dataclasses.replace(reconciled, problem=problem, reason=reason),
        extra={
            "samplingVersion": state.rules.version,
            "gateway": {"endpoint": gateway_endpoint(pipeline)},
            "nats": {
                "stream": names.stream,
                "eventsSubject": names.events_subject,
                "dlqSubject": names.dlq_subject,
                "configBucket": names.config_bucket,
                "consumer": names.consumer,
            },
        },
    )
    return changed


def owner_mark_of(pipeline: Pipeline) -> str:
    return natsclaims.owner_mark(pipeline.namespace, pipeline.name)


async def delete_pipeline_nats(body: Mapping[str, Any]) -> list[str]:
    """`deletionPolicy: Delete`: remove the pipeline's stream (and consumer) and bucket.
    Raises NatsError when NATS cannot be reached (kopf retries, then lets the pipeline go)."""
    pipeline = as_pipeline(body)
    deleted = await natsconfig.delete_pipeline(
        pipeline.spec.nats.url,
        nats_names(pipeline),
        owner=owner_mark_of(pipeline),
        creds=await _nats_creds(pipeline),
    )
    log.info("pipeline %s/%s deleted: %s", pipeline.namespace, pipeline.name, deleted or "none")
    return deleted


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
            component, await kube.get("Deployment", namespace, deployment)
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
    await kube.patch_status("AnalyticsPipeline", namespace, name, status)


async def refresh_owner_status(deployment: Mapping[str, Any]) -> None:
    """A managed Deployment changed: re-read its pipeline's readiness."""
    meta = deployment.get("metadata", {})
    for owner in meta.get("ownerReferences") or ():
        if owner.get("kind") == "AnalyticsPipeline":
            body = await kube.get("AnalyticsPipeline", meta.get("namespace"), owner["name"])
            if body is not None and not body["metadata"].get("deletionTimestamp"):
                await refresh_pipeline_status(body)


async def pipelines_in(namespace: str, *, policy_name: str | None = None) -> list[dict[str, Any]]:
    """The pipelines of a namespace, or those referencing one SamplingPolicy."""
    found = await kube.list_objects("AnalyticsPipeline", namespace)
    if policy_name is None:
        return found
    return [
        p
        for p in found
        if ((p.get("spec") or {}).get("samplingPolicyRef") or {}).get("name") == policy_name
    ]


async def _sampling_for(
    pipeline: Pipeline, *, heartbeat_rate: float | None
) -> tuple[SamplingState, str | None]:
    """The rules in force for a pipeline, and a problem to report (or None).

    An invalid policy keeps its last good spec (status.appliedSpec); a missing one means the
    default rules, reported, because a dangling reference is usually a typo.
    """
    ref = pipeline.spec.sampling_policy_ref
    if ref is None:
        return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), None
    body = await kube.get("SamplingPolicy", pipeline.namespace, ref.name)
    if body is None:
        problem = f"SamplingPolicy {ref.name!r} not found: the default rules are in force"
        return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), problem
    for candidate in (body.get("spec"), (body.get("status") or {}).get("appliedSpec")):
        if candidate is None:
            continue
        try:
            spec = policy.parse_policy(candidate)
            return policy.sampling_state(spec, heartbeat_rate=heartbeat_rate), None
        except (pydantic.ValidationError, sampling.SamplingRulesError):
            continue
    return policy.sampling_state(None, heartbeat_rate=heartbeat_rate), None


async def _secret_data(namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data (for the pod templates' digest), or None when it does not exist."""
    secret = await kube.get("Secret", namespace, name)
    return None if secret is None else dict(secret.get("data") or {})


async def _delete_owned(kind: str, namespace: str, name: str, *, owner_uid: str) -> bool:
    """Delete an object the pipeline no longer wants, only if the pipeline owns it (an
    object of the same name made by someone else is left alone). True when deleted."""
    try:
        live = await kube.get(kind, namespace, name)
    except kube.ApiError as exc:
        if exc.status in (403, 404):  # the kind is not served (no Prometheus Operator)
            return False
        raise
    owners = ((live or {}).get("metadata") or {}).get("ownerReferences") or ()
    if not any(ref.get("uid") == owner_uid for ref in owners):
        return False
    return await kube.delete(kind, namespace, name)


async def _nats_creds(pipeline: Pipeline) -> str | None:
    """A file path holding the pipeline's NATS credentials, read from its Secret."""
    ref = pipeline.spec.nats.credentials_secret_ref
    if ref is None:
        return None
    secret = await kube.get("Secret", pipeline.namespace, ref.name)
    data = ((secret or {}).get("data") or {}).get(ref.key)
    if data is None:
        raise natsconfig.NatsError(f"Secret {ref.name!r} has no key {ref.key!r}")
    folder = os.path.join(tempfile.gettempdir(), "gameplay-analytics-nats")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, f"{pipeline.namespace}.{pipeline.name}.creds")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(base64.b64decode(data))
    return path


# -- SamplingPolicy ------------------------------------------------------------------------------


async def reconcile_policy(body: Mapping[str, Any]) -> None:
    """Compile the policy; refuse it in status when invalid (its last good spec stays in
    force), otherwise record it and republish to every pipeline that references it."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    previous = body.get("status") or {}
    generation = meta.get("generation")
    try:
        spec = policy.parse_policy(body.get("spec"))
        state = policy.sampling_state(spec)
    except (pydantic.ValidationError, sampling.SamplingRulesError) as exc:
        message = str(exc).replace("\n", " ")
        kept = (
            "the last good rules stay in force"
            if previous.get("appliedSpec")
            else ("the default rules stay in force")
        )
        condition = conditions.Condition("Ready", False, "InvalidRules", f"{message}; {kept}")
        await kube.patch_status(
            "SamplingPolicy",
            namespace,
            name,
            {
                "observedGeneration": generation,
                "conditions": conditions.merge_conditions(
                    previous.get("conditions"), [condition], generation=generation
                ),
            },
        )
        return
    await kube.patch_status(
        "SamplingPolicy",
        namespace,
        name,
        {
            "appliedSpec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "appliedAt": conditions.now(),
        },
    )
    versions, problems = [], []
    for pipeline in await pipelines_in(namespace, policy_name=name):
        try:
            await reconcile_pipeline(pipeline)
            fresh = await kube.get("AnalyticsPipeline", namespace, pipeline["metadata"]["name"])
            versions.append(((fresh or {}).get("status") or {}).get("samplingVersion"))
        except (kube.ApiError, natsconfig.NatsError) as exc:
            problems.append(f"{pipeline['metadata']['name']}: {exc}")
    ready = (
        conditions.Condition("Ready", False, "PublishFailed", "; ".join(problems))
        if problems
        else conditions.Condition(
            "Ready",
            True,
            "Applied" if versions else "NotReferenced",
            f"published to {len(versions)} pipeline(s)" if versions else "no pipeline uses it",
        )
    )
    await kube.patch_status(
        "SamplingPolicy",
        namespace,
        name,
        {
            "observedGeneration": generation,
            "samplingVersion": next((v for v in versions if v), state.rules.version),
            "conditions": conditions.merge_conditions(
                previous.get("conditions"), [ready], generation=generation
            ),
        },
    )


# -- SchemaVersion -------------------------------------------------------------------------------


async def accepted_schemas(namespace: str) -> dict[str, Mapping[str, Any]]:
    """The versions gateways accept: the shipped released ones and every Accepted
    SchemaVersion of the namespace, as accepted (status.acceptedSchema: immutable)."""
    accepted: dict[str, Mapping[str, Any]] = dict(schema_registry.released_schemas())
    for item in await kube.list_objects("SchemaVersion", namespace):
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
    Returns the phase. A rejected version is never published (and its status says why)."""
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
        "SchemaVersion",
        namespace,
        name,
        {
            "observedGeneration": generation,
            "phase": phase,
            "problems": problems,
            "acceptedSchema": None if problems else document,
            "conditions": conditions.merge_conditions(
                previous.get("conditions"), [condition], generation=generation
            ),
        },
    )
    await republish(namespace)
    return phase


async def republish(namespace: str) -> None:
    """Reconcile every pipeline of the namespace (after schemas or a policy went away)."""
    for pipeline in await pipelines_in(namespace):
        try:
            await reconcile_pipeline(pipeline)
        except kube.ApiError as exc:
            log.warning("republishing to %s failed: %s", pipeline["metadata"]["name"], exc)


async def _schema_document(namespace: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    if spec.get("schema") is not None:
        return dict(spec["schema"])
    ref = (spec.get("schemaFrom") or {}).get("configMapKeyRef")
    if ref is None:
        return None
    config_map = await kube.get("ConfigMap", namespace, ref["name"])
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


# -- Load signals --------------------------------------------------------------------------------


async def step_heartbeat(namespace: str, name: str) -> sampling.HeartbeatState | None:
    """One controller step for a pipeline: read Prometheus, move the heartbeat rate, publish.

    When Prometheus does not answer, the last rate stays and the pipeline is Degraded with
    the reason. Returns the new state, or None when the heartbeat class is pinned.
    """
    body = await kube.get("AnalyticsPipeline", namespace, name)
    if body is None:
        return None
    pipeline = as_pipeline(body)
    spec = None
    ref = pipeline.spec.sampling_policy_ref
    policy_body = await kube.get("SamplingPolicy", namespace, ref.name) if ref else None
    if policy_body is not None:
        try:
            spec = policy.parse_policy(
                (policy_body.get("status") or {}).get("appliedSpec") or policy_body.get("spec")
            )
            rules = policy.policy_rules(spec)
        except (pydantic.ValidationError, sampling.SamplingRulesError):
            spec, rules = None, policy.default_rules()
    else:
        rules = policy.default_rules()
    config = policy.heartbeat_config(rules, spec.heartbeat if spec else None)
    if config is None:
        return None
    saved = (body.get("status") or {}).get("heartbeat") or {}
    start_rate = rules.classes[sampling.HEARTBEAT_CLASS].rate
    state = (
        sampling.HeartbeatState(
            rate=float(saved["rate"]),
            combat_high_since=saved.get("combatHighSince"),
            reason=str(saved.get("reason", "")),
        )
        if saved.get("rate") is not None
        else sampling.HeartbeatState.start(start_rate, config)
    )
    try:
        signals, figures = await loadsignals.read_signals(pipeline)
    except loadsignals.PrometheusUnavailable as exc:
        operator_metrics.LOAD_SIGNAL_FAILURES.labels(namespace, name).inc()
        report = {"ok": False, "message": f"{exc}; keeping heartbeat sampling at {state.rate:g}"}
        await refresh_pipeline_status(
            body, extra={"loadSignals": {**report, "at": conditions.now()}}
        )
        return state
    new = sampling.step(state, signals, config=config)
    operator_metrics.heartbeat_stepped(namespace, name, rate=new.rate, figures=figures)
    heartbeat = {"rate": new.rate, "reason": new.reason, "combatHighSince": new.combat_high_since}
    extra = {
        "heartbeat": heartbeat,
        "loadSignals": {"ok": True, "message": "", "at": conditions.now(), "figures": figures},
    }
    await kube.patch_status("AnalyticsPipeline", namespace, name, extra)
    if policy_body is not None:
        await kube.patch_status(
            "SamplingPolicy", namespace, ref.name if ref else "", {"heartbeat": heartbeat}
        )
    fresh = await kube.get("AnalyticsPipeline", namespace, name)
    if fresh is not None:
        await reconcile_pipeline(fresh)  # publishes the rules with the new rate, if it moved
    return new
