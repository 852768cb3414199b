"""One reconcile of each kind: read what the cluster holds, call the pure functions, apply.

The kopf handlers in `handlers` are one-liners over these. Each function is idempotent and
safe to run concurrently with itself for another object: objects are compared before any
write, and KV values are written only when they change.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

import pydantic

from gameplay_analytics import sampling
from gameplay_analytics.operator import (
    conditions,
    inforce,
    kube,
    natsclaims,
    natsconfig,
    policy,
    workloads,
)
from gameplay_analytics.operator import status as status_decision
from gameplay_analytics.operator.manifests import (
    Pipeline,
    config_values,
    desired_objects,
    gateway_endpoint,
    prunable_objects,
)
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from gameplay_analytics.operator.naming import nats_names
from gameplay_analytics.operator.schemaversions import accepted_schemas
from gameplay_analytics.operator.statuspatch import refresh_pipeline_status

__all__ = [
    "as_pipeline",
    "delete_pipeline_nats",
    "pipelines_in",
    "reconcile_pipeline",
    "reconcile_policy",
    "republish",
]

log = logging.getLogger(__name__)

WARM_STORE_OFF = "off: no objectStore or warmVolume, hot retention drops days unexported"
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
    state, problem = await inforce.sampling_for(pipeline, heartbeat_rate=rate)
    reason = "ReconcileFailed"
    schemas = await accepted_schemas(pipeline.namespace)
    monitoring = pipeline.spec.monitoring.service_monitor and all(
        [await kube.crd_exists(name=name) for name in MONITORING_CRDS]
    )
    secrets = {
        name: await _secret_data(pipeline.namespace, name)
        for component in ("gateway", "aggregator")
        for name in workloads.secret_refs(pipeline, component)
    }
    config_maps = {
        name: await _config_map_data(pipeline.namespace, name)
        for component in ("gateway", "aggregator")
        for name in workloads.config_map_refs(pipeline, component)
    }
    outcomes: dict[str, str] = {}
    reconciled = status_decision.Reconciled(body["metadata"].get("generation"), problem)
    wanted = desired_objects(
        pipeline,
        state,
        schemas,
        monitoring=monitoring,
        secrets=secrets,
        config_maps=config_maps,
    )
    for obj in wanted:
        obj["metadata"]["ownerReferences"] = [owner_reference(body)]
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            outcomes[key] = await kube.ensure(obj=obj)
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
        login = await _nats_login(pipeline)
        await natsconfig.ensure_pipeline(
            pipeline.spec.nats, names, owner=owner_mark_of(pipeline), login=login
        )
        await natsconfig.publish_config(
            pipeline.spec.nats.url,
            config_values(state, schemas),
            bucket=names.config_bucket,
            login=login,
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
            "warmStore": workloads.warehouse_root(pipeline) or WARM_STORE_OFF,
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
        login=await _nats_login(pipeline),
    )
    log.info("pipeline %s/%s deleted: %s", pipeline.namespace, pipeline.name, deleted or "none")
    return deleted


async def pipelines_in(namespace: str, *, policy_name: str | None = None) -> list[dict[str, Any]]:
    """The pipelines of a namespace, or those referencing one SamplingPolicy."""
    found = await kube.list_objects(kind="AnalyticsPipeline", namespace=namespace)
    if policy_name is None:
        return found
    return [
        p
        for p in found
        if ((p.get("spec") or {}).get("samplingPolicyRef") or {}).get("name") == policy_name
    ]


async def _secret_data(namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data (for the pod templates' digest), or None when it does not exist."""
    secret = await kube.get(kind="Secret", namespace=namespace, name=name)
    return None if secret is None else dict(secret.get("data") or {})


async def _config_map_data(namespace: str, name: str) -> dict[str, Any] | None:
    """A mounted ConfigMap's content (for the pod template's digest), or None when absent."""
    found = await kube.get(kind="ConfigMap", namespace=namespace, name=name)
    if found is None:
        return None
    return {"data": found.get("data") or {}, "binaryData": found.get("binaryData") or {}}


async def _delete_owned(kind: str, namespace: str, name: str, *, owner_uid: str) -> bool:
    """Delete an object the pipeline no longer wants, only if the pipeline owns it (an
    object of the same name made by someone else is left alone). True when deleted."""
    try:
        live = await kube.get(kind=kind, namespace=namespace, name=name)
    except kube.ApiError as exc:
        if exc.status in (403, 404):  # the kind is not served (no Prometheus Operator)
            return False
        raise
    owners = ((live or {}).get("metadata") or {}).get("ownerReferences") or ()
    if not any(ref.get("uid") == owner_uid for ref in owners):
        return False
    return await kube.delete(kind=kind, namespace=namespace, name=name)


async def _nats_login(pipeline: Pipeline) -> natsconfig.NatsLogin | None:
    """How the operator logs in to the pipeline's NATS, over TLS with `spec.nats.tls`."""
    login = await _nats_user(pipeline)
    tls = pipeline.spec.nats.tls
    if tls is None:
        return login
    keys = [tls.ca_key, *([tls.cert_key, tls.key_key] if tls.cert_key and tls.key_key else [])]
    pem = await _secret_values(pipeline.namespace, tls.secret_name, *keys)
    cert = key = None
    if tls.cert_key and tls.key_key:
        cert = _private_file(pipeline, "tls.crt", pem[tls.cert_key])
        key = _private_file(pipeline, "tls.key", pem[tls.key_key])
    try:
        context = natsconfig.tls_context(pem[tls.ca_key], cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise natsconfig.NatsError(f"Secret {tls.secret_name!r}: {exc}") from None
    return dataclasses.replace(login or natsconfig.NatsLogin(), tls=context)


def _private_file(pipeline: Pipeline, suffix: str, data: str) -> str:
    """`data` in a file only this process's user reads (a client key, a .creds file)."""
    folder = os.path.join(tempfile.gettempdir(), "gameplay-analytics-nats")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, f"{pipeline.namespace}.{pipeline.name}.{suffix}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(data)
    return path


async def _nats_user(pipeline: Pipeline) -> natsconfig.NatsLogin | None:
    """Its own user (`spec.nats.users.operator`, a Secret with `user` and `password`), else
    the `.creds` file of `credentialsSecretRef` written to a private file, else none."""
    nats_spec = pipeline.spec.nats
    users = nats_spec.users
    if users is not None and users.operator is not None:
        keys = (workloads.NATS_USER_KEY, workloads.NATS_PASSWORD_KEY)  # the pods' Secret keys
        user = await _secret_values(pipeline.namespace, users.operator.name, *keys)
        return natsconfig.NatsLogin(user=user[keys[0]], password=user[keys[1]])
    ref = nats_spec.credentials_secret_ref
    if ref is None:
        return None
    data = (await _secret_values(pipeline.namespace, ref.name, ref.key))[ref.key]
    return natsconfig.NatsLogin(creds_file=_private_file(pipeline, "creds", data))


async def _secret_values(namespace: str, name: str, *keys: str) -> dict[str, str]:
    """Decoded values of a Secret's keys; NatsError naming the Secret and key when missing."""
    secret = await kube.get(kind="Secret", namespace=namespace, name=name)
    data = (secret or {}).get("data") or {}
    missing = [key for key in keys if key not in data]
    if missing:
        raise natsconfig.NatsError(f"Secret {name!r} has no key {missing[0]!r}")
    return {key: base64.b64decode(data[key]).decode() for key in keys}


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
            kind="SamplingPolicy",
            namespace=namespace,
            name=name,
            status={
                "observedGeneration": generation,
                "conditions": conditions.merge_conditions(
                    previous.get("conditions"), [condition], generation=generation
                ),
            },
        )
        return
    await kube.patch_status(
        kind="SamplingPolicy",
        namespace=namespace,
        name=name,
        status={
            "appliedSpec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "appliedAt": conditions.now(),
        },
    )
    versions, problems = [], []
    for pipeline in await pipelines_in(namespace, policy_name=name):
        try:
            await reconcile_pipeline(pipeline)
            fresh = await kube.get(
                kind="AnalyticsPipeline", namespace=namespace, name=pipeline["metadata"]["name"]
            )
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
        kind="SamplingPolicy",
        namespace=namespace,
        name=name,
        status={
            "observedGeneration": generation,
            "samplingVersion": next((v for v in versions if v), state.rules.version),
            "conditions": conditions.merge_conditions(
                previous.get("conditions"), [ready], generation=generation
            ),
        },
    )


async def republish(namespace: str) -> None:
    """Reconcile every pipeline of the namespace (after schemas or a policy went away)."""
    for pipeline in await pipelines_in(namespace):
        try:
            await reconcile_pipeline(pipeline)
        except kube.ApiError as exc:
            log.warning("republishing to %s failed: %s", pipeline["metadata"]["name"], exc)
