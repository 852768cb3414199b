"""What an AnalyticsPipeline should look like in the cluster: pure functions, no I/O.

`desired_objects` turns a pipeline, its sampling state and the accepted schemas into the
Kubernetes objects the operator applies; `prunable_objects` names those it may own but no
longer wants. Hot-reloaded content (sampling rules, breaker, accepted schemas) lives in a
ConfigMap that the pod templates do not hash, so changing it never rolls a Deployment; the
runtime ConfigMap and the Secrets the pods read are hashed into the templates, so changing
them always does. The renderers are `workloads` and `auxiliary`; names live in `naming`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import natsnames
from gameplay_analytics.operator import auxiliary, daily, netpol, quality, workloads
from gameplay_analytics.operator.naming import (
    CONFIG_HASH_ANNOTATION,
    MANAGED_BY,
    SECRETS_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    Pipeline,
    SamplingState,
    canonical,
    digest,
    gateway_endpoint,
    meta,
    object_names,
    selector_labels,
)

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "MANAGED_BY",
    "SECRETS_HASH_ANNOTATION",
    "TEMPLATE_HASH_ANNOTATION",
    "Pipeline",
    "SamplingState",
    "config_values",
    "desired_objects",
    "gateway_endpoint",
    "object_names",
    "prunable_objects",
    "selector_labels",
]


def config_values(
    sampling: SamplingState, schemas: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """The values published under the KV keys of PROTOCOL.md §3 (and into the sampling
    ConfigMap for a cold start): compiled wire form, the accepted schema versions and the
    gateways' breaker."""
    accepted = sorted(schemas, key=_semver_key)
    return {
        natsnames.KV_SAMPLING_KEY: canonical(sampling.rules.to_wire()),
        natsnames.KV_SCHEMAS_KEY: canonical(
            {"accepted": accepted, "documents": {v: schemas[v] for v in accepted}}
        ),
        natsnames.KV_BREAKER_KEY: canonical(sampling.breaker.model_dump(by_alias=True)),
    }


def desired_objects(
    pipeline: Pipeline,
    sampling: SamplingState,
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    monitoring: bool = False,
    secrets: Mapping[str, Mapping[str, str] | None] | None = None,
    config_maps: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Every object the pipeline owns, in apply order (config first, then workloads).

    `monitoring` says whether the monitoring.coreos.com CRDs exist; only then (and when the
    spec asks for it) are a ServiceMonitor and a PrometheusRule included. `secrets` (and
    `config_maps`: those of `workloads.config_map_refs`, e.g. a GeoIP database) holds the
    data of the Secrets named by `workloads.secret_refs` (None: absent), hashed into each pod
    template so that a rotation rolls the pods that read it. Owner references are the
    caller's: they need the owner's uid, which a pure function has no business with.
    """
    spec = pipeline.spec
    names = object_names(pipeline.name)
    runtime = workloads.runtime_config(pipeline)

    def _secrets_hash(component: str) -> str:
        read = {n: (secrets or {}).get(n) for n in workloads.secret_refs(pipeline, component)}
        mounted = workloads.config_map_refs(pipeline, component)
        if not mounted:  # (the digest of Secrets alone stays what it was)
            return digest(read)
        return digest(
            {"secrets": read, "configMaps": {n: (config_maps or {}).get(n) for n in mounted}}
        )

    objects = [
        _config_map(pipeline, names.runtime_config, runtime),
        _config_map(
            pipeline,
            names.sampling_config,
            {
                **{f"{key}.json": value for key, value in config_values(sampling, schemas).items()},
                "sampling-version": sampling.rules.version,
            },
        ),
        workloads.gateway_deployment(
            pipeline, config_hash=digest(runtime), secrets_hash=_secrets_hash("gateway")
        ),
        auxiliary.service(pipeline, "gateway", spec.gateway.port, spec.gateway.metrics_port),
        *([auxiliary.pdb(pipeline, "gateway")] if spec.gateway.replicas != 0 else []),
        workloads.aggregator_deployment(
            pipeline, config_hash=digest(runtime), secrets_hash=_secrets_hash("aggregator")
        ),
        auxiliary.service(pipeline, "aggregator", None, spec.aggregator.metrics_port),
        # A component scaled to zero has nothing to protect: its PDB goes (pruned).
        *([auxiliary.pdb(pipeline, "aggregator")] if spec.aggregator.replicas != 0 else []),
    ]
    if spec.gateway.autoscaling is not None:
        objects.append(auxiliary.hpa(pipeline))
    objects.append(quality.cronjob(pipeline))
    insights = daily.cronjob(pipeline)
    if insights is not None:
        objects.append(insights)
    objects += netpol.network_policies(pipeline)
    if monitoring and spec.monitoring.service_monitor:
        objects += [auxiliary.service_monitor(pipeline), auxiliary.prometheus_rule(pipeline)]
    return objects


def prunable_objects(pipeline: Pipeline, wanted: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, name) of the objects this pipeline may have created that `wanted` no longer
    holds: an HPA after a switch to fixed replicas, monitoring objects or NetworkPolicies
    once turned off. The
    names are fixed, so the operator finds them with `get` (no list across the namespace)."""
    names = object_names(pipeline.name)
    possible = [
        ("HorizontalPodAutoscaler", names.gateway),
        ("PodDisruptionBudget", names.gateway),
        ("PodDisruptionBudget", names.aggregator),
        ("ServiceMonitor", pipeline.name),
        ("PrometheusRule", pipeline.name),
        ("CronJob", daily.job_name(pipeline.name)),
        *(("NetworkPolicy", name) for name in netpol.policy_names(pipeline.name).values()),
    ]
    present = {(obj["kind"], obj["metadata"]["name"]) for obj in wanted}
    return [kind_name for kind_name in possible if kind_name not in present]


def _config_map(pipeline: Pipeline, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(pipeline, name, "config"),
        "data": data,
    }


def _semver_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
