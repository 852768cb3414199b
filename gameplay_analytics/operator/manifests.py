"""What an AnalyticsPipeline should look like in the cluster: pure functions, no I/O.

`desired_objects` turns a pipeline, its sampling state and the accepted schemas into the
Kubernetes objects the operator applies. Hot-reloaded content (sampling rules, accepted
schemas) lives in a ConfigMap that the pod templates do not hash, so changing it never rolls
a Deployment; the runtime ConfigMap is hashed into the templates, so changing it always does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import messages
from gameplay_analytics.operator import alerts
from gameplay_analytics.operator.models import AnalyticsPipelineSpec, BreakerSpec
from gameplay_analytics.sampling import CompiledRules

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "MANAGED_BY",
    "TEMPLATE_HASH_ANNOTATION",
    "Pipeline",
    "SamplingState",
    "config_values",
    "desired_objects",
    "gateway_endpoint",
    "object_names",
    "selector_labels",
]

MANAGED_BY = "gameplay-analytics-operator"
TEMPLATE_HASH_ANNOTATION = "analytics.gameplay.dev/template-hash"
CONFIG_HASH_ANNOTATION = "analytics.gameplay.dev/config-hash"
ENV_PREFIX = "GAMEPLAY_ANALYTICS_"
RUN_AS_USER = 10001
CONFIG_MOUNT = "/etc/gameplay-analytics"
GEOIP_MOUNT = "/var/lib/geoip"
NATS_CREDS_MOUNT = "/var/run/secrets/nats"
DEFAULT_GATEWAY_REPLICAS = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    """An AnalyticsPipeline as the renderer needs it: where it lives and its parsed spec."""

    name: str
    namespace: str
    spec: AnalyticsPipelineSpec


@dataclasses.dataclass(frozen=True, slots=True)
class SamplingState:
    """The rules in force (heartbeat rate already applied) and the gateways' breaker config."""

    rules: CompiledRules
    breaker: BreakerSpec = dataclasses.field(default_factory=BreakerSpec)


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectNames:
    runtime_config: str
    sampling_config: str
    gateway: str
    aggregator: str


def object_names(name: str) -> ObjectNames:
    return ObjectNames(
        runtime_config=f"{name}-config",
        sampling_config=f"{name}-sampling",
        gateway=f"{name}-gateway",
        aggregator=f"{name}-aggregator",
    )


def gateway_endpoint(pipeline: Pipeline) -> str:
    """Where SDKs inside the cluster connect: the gateway Service's DNS name (PROTOCOL §1)."""
    gateway = object_names(pipeline.name).gateway
    return f"ws://{gateway}.{pipeline.namespace}.svc:{pipeline.spec.gateway.port}/ws"


def selector_labels(pipeline: str, component: str) -> dict[str, str]:
    """The labels a component's pods are selected by (never change: selectors are immutable)."""
    return {
        "app.kubernetes.io/name": "gameplay-analytics",
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/component": component,
    }


def config_values(
    sampling: SamplingState, schemas: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """The values published under the KV keys of PROTOCOL.md §3 (and into the sampling
    ConfigMap for a cold start): compiled wire form, and the accepted schema versions."""
    accepted = sorted(schemas, key=_semver_key)
    return {
        messages.KV_SAMPLING_KEY: _canonical(sampling.rules.to_wire()),
        messages.KV_SCHEMAS_KEY: _canonical(
            {"accepted": accepted, "documents": {v: schemas[v] for v in accepted}}
        ),
    }


def desired_objects(
    pipeline: Pipeline,
    sampling: SamplingState,
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    monitoring: bool = False,
) -> list[dict[str, Any]]:
    """Every object the pipeline owns, in apply order (config first, then workloads).

    `monitoring` says whether the monitoring.coreos.com CRDs exist; only then (and when the
    spec asks for it) are a ServiceMonitor and a PrometheusRule included. Owner references
    are the caller's: they need the owner's uid, which a pure function has no business with.
    """
    spec = pipeline.spec
    names = object_names(pipeline.name)
    runtime = _runtime_config(pipeline)
    objects = [
        _config_map(pipeline, names.runtime_config, runtime),
        _config_map(
            pipeline,
            names.sampling_config,
            {
                **{f"{key}.json": value for key, value in config_values(sampling, schemas).items()},
                "breaker.json": _canonical(sampling.breaker.model_dump(by_alias=True)),
                "sampling-version": sampling.rules.version,
            },
        ),
        _gateway_deployment(pipeline, config_hash=_digest(runtime)),
        _service(pipeline, "gateway", spec.gateway.port, spec.gateway.metrics_port),
        _pdb(pipeline, "gateway"),
        _aggregator_deployment(pipeline, config_hash=_digest(runtime)),
        _service(pipeline, "aggregator", None, spec.aggregator.metrics_port),
        _pdb(pipeline, "aggregator"),
    ]
    if spec.gateway.autoscaling is not None:
        objects.append(_hpa(pipeline))
    if monitoring and spec.monitoring.service_monitor:
        objects += [_service_monitor(pipeline), _prometheus_rule(pipeline)]
    return objects


# -- private: building blocks -------------------------------------------------------------------


def _labels(pipeline: Pipeline, component: str) -> dict[str, str]:
    return {**selector_labels(pipeline.name, component), "app.kubernetes.io/managed-by": MANAGED_BY}


def _meta(pipeline: Pipeline, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": pipeline.namespace, "labels": _labels(pipeline, component)}


def _config_map(pipeline: Pipeline, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(pipeline, name, "config"),
        "data": data,
    }


def _runtime_config(pipeline: Pipeline) -> dict[str, str]:
    """Non-secret settings shared by gateway and aggregator, as env var values."""
    spec = pipeline.spec
    store = spec.object_store
    root = f"s3://{store.bucket}/{store.prefix.strip('/')}".rstrip("/")
    data = {
        "NATS_URL": spec.nats.url,
        "QUEUE_CAPACITY": str(spec.gateway.queue_capacity),
        "SHARD": spec.gateway.shard,
        "BATCH_SIZE": str(spec.aggregator.batch_size),
        "WAREHOUSE_ROOT": root,
        "HOT_RETENTION_HOURS": str(spec.retention.hot_hours),
        "WARM_RETENTION_DAYS": str(spec.retention.warm_days),
    }
    if store.endpoint:
        data["S3_ENDPOINT"] = store.endpoint
    if spec.privacy.geoip is not None:
        data["GEOIP_DB"] = f"{GEOIP_MOUNT}/{spec.privacy.geoip.file}"
    if spec.nats.credentials_secret_ref is not None:
        data["NATS_CREDS"] = f"{NATS_CREDS_MOUNT}/{spec.nats.credentials_secret_ref.key}"
    return data


def _from_config(pipeline: Pipeline, keys: list[str], runtime: Mapping[str, str]) -> list[Any]:
    config = object_names(pipeline.name).runtime_config
    return [
        {
            "name": f"{ENV_PREFIX}{key}",
            "valueFrom": {"configMapKeyRef": {"name": config, "key": key}},
        }
        for key in keys
        if key in runtime
    ]


def _from_secret(env: str, name: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def _literal(key: str, value: object) -> dict[str, Any]:
    return {"name": f"{ENV_PREFIX}{key}", "value": str(value)}


def _gateway_deployment(pipeline: Pipeline, *, config_hash: str) -> dict[str, Any]:
    spec = pipeline.spec
    gateway = spec.gateway
    runtime = _runtime_config(pipeline)
    env = [
        *_from_config(pipeline, ["NATS_URL", "NATS_CREDS", "QUEUE_CAPACITY", "SHARD"], runtime),
        _literal("WS_PORT", gateway.port),
        _literal("METRICS_PORT", gateway.metrics_port),
        _from_secret(
            f"{ENV_PREFIX}JWT_SECRET", gateway.jwt_secret_ref.name, gateway.jwt_secret_ref.key
        ),
        _salt(pipeline),
        *_config_files(),
    ]
    ports = [
        {"name": "ws", "containerPort": gateway.port, "protocol": "TCP"},
        {"name": "metrics", "containerPort": gateway.metrics_port, "protocol": "TCP"},
    ]
    replicas = (
        None
        if gateway.autoscaling
        else (DEFAULT_GATEWAY_REPLICAS if gateway.replicas is None else gateway.replicas)
    )
    return _deployment(
        pipeline,
        "gateway",
        replicas=replicas,
        env=env,
        ports=ports,
        resources=gateway.resources.model_dump(exclude_none=True),
        config_hash=config_hash,
    )


def _aggregator_deployment(pipeline: Pipeline, *, config_hash: str) -> dict[str, Any]:
    spec = pipeline.spec
    aggregator = spec.aggregator
    runtime = _runtime_config(pipeline)
    credentials = spec.object_store.credentials_secret_ref.name
    keys = [
        "NATS_URL",
        "NATS_CREDS",
        "WAREHOUSE_ROOT",
        "S3_ENDPOINT",
        "BATCH_SIZE",
        "HOT_RETENTION_HOURS",
        "WARM_RETENTION_DAYS",
        "GEOIP_DB",
    ]
    env = [
        *_from_config(pipeline, keys, runtime),
        _literal("METRICS_PORT", aggregator.metrics_port),
        _from_secret(
            f"{ENV_PREFIX}POSTGRES_DSN",
            spec.postgres.dsn_secret_ref.name,
            spec.postgres.dsn_secret_ref.key,
        ),
        _from_secret("AWS_ACCESS_KEY_ID", credentials, "AWS_ACCESS_KEY_ID"),
        _from_secret("AWS_SECRET_ACCESS_KEY", credentials, "AWS_SECRET_ACCESS_KEY"),
        _salt(pipeline),
        *_config_files(),
    ]
    ports = [{"name": "metrics", "containerPort": aggregator.metrics_port, "protocol": "TCP"}]
    return _deployment(
        pipeline,
        "aggregator",
        replicas=aggregator.replicas,
        env=env,
        ports=ports,
        resources=aggregator.resources.model_dump(exclude_none=True),
        config_hash=config_hash,
        geoip=True,
    )


def _salt(pipeline: Pipeline) -> dict[str, Any]:
    ref = pipeline.spec.privacy.salt_secret_ref
    return _from_secret(f"{ENV_PREFIX}SALT_SECRET", ref.name, ref.key)


def _config_files() -> list[dict[str, Any]]:
    # The cold-start copies of what NATS KV hot-reloads (used until the first KV read).
    return [
        {"name": f"{ENV_PREFIX}SAMPLING_FILE", "value": f"{CONFIG_MOUNT}/sampling.json"},
        {"name": f"{ENV_PREFIX}SCHEMAS_FILE", "value": f"{CONFIG_MOUNT}/schemas.json"},
        {"name": f"{ENV_PREFIX}BREAKER_FILE", "value": f"{CONFIG_MOUNT}/breaker.json"},
    ]


def _deployment(
    pipeline: Pipeline,
    component: str,
    *,
    replicas: int | None,
    env: list[Any],
    ports: list[dict[str, Any]],
    resources: dict[str, Any],
    config_hash: str,
    geoip: bool = False,
) -> dict[str, Any]:
    spec = pipeline.spec
    names = object_names(pipeline.name)
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "sampling", "mountPath": CONFIG_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {"name": "sampling", "configMap": {"name": names.sampling_config}},
    ]
    creds = spec.nats.credentials_secret_ref
    if creds is not None:
        mounts.append({"name": "nats-creds", "mountPath": NATS_CREDS_MOUNT, "readOnly": True})
        volumes.append({"name": "nats-creds", "secret": {"secretName": creds.name}})
    geo = spec.privacy.geoip
    if geoip and geo is not None:
        mounts.append({"name": "geoip", "mountPath": GEOIP_MOUNT, "readOnly": True})
        source: dict[str, Any] = (
            {"persistentVolumeClaim": {"claimName": geo.claim_name, "readOnly": True}}
            if geo.claim_name
            else {"configMap": {"name": geo.config_map_name}}
        )
        volumes.append({"name": "geoip", **source})
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10}
    container = {
        "name": component,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["gameplay-analytics", component],
        "ports": ports,
        "env": env,
        "resources": {k: {q: str(v) for q, v in qs.items()} for k, qs in resources.items() if qs},
        "livenessProbe": {**probe, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    template = {
        "metadata": {
            "labels": _labels(pipeline, component),
            "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "runAsGroup": RUN_AS_USER,
                "fsGroup": RUN_AS_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(pipeline.name, component)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": template,
    }
    if replicas is not None:
        deployment_spec = {"replicas": replicas, **deployment_spec}
    meta = _meta(pipeline, getattr(names, component), component)
    meta["annotations"] = {TEMPLATE_HASH_ANNOTATION: _digest(template)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": deployment_spec,
    }


def _service(
    pipeline: Pipeline, component: str, port: int | None, metrics_port: int
) -> dict[str, Any]:
    ports = [{"name": "metrics", "port": metrics_port, "targetPort": "metrics", "protocol": "TCP"}]
    service_type = "ClusterIP"
    if port is not None:
        ports.insert(0, {"name": "ws", "port": port, "targetPort": "ws", "protocol": "TCP"})
        service_type = pipeline.spec.gateway.service_type
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(pipeline, getattr(object_names(pipeline.name), component), component),
        "spec": {
            "type": service_type,
            "selector": selector_labels(pipeline.name, component),
            "ports": ports,
        },
    }


def _pdb(pipeline: Pipeline, component: str) -> dict[str, Any]:
    # maxUnavailable (not minAvailable) so that a single replica can still be drained.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(pipeline, getattr(object_names(pipeline.name), component), component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(pipeline.name, component)},
        },
    }


def _hpa(pipeline: Pipeline) -> dict[str, Any]:
    autoscaling = pipeline.spec.gateway.autoscaling
    assert autoscaling is not None
    name = object_names(pipeline.name).gateway
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(pipeline, name, "gateway"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


def _service_monitor(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(pipeline, pipeline.name, "monitoring"),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "gameplay-analytics",
                    "app.kubernetes.io/instance": pipeline.name,
                }
            },
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }


def _prometheus_rule(pipeline: Pipeline) -> dict[str, Any]:
    names = object_names(pipeline.name)
    selector = f'namespace="{pipeline.namespace}",job=~"{names.gateway}|{names.aggregator}"'
    scope = alerts.AlertScope(group=f"gameplay-analytics.{pipeline.name}", selector=selector)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta(pipeline, pipeline.name, "monitoring"),
        "spec": {"groups": alerts.rule_groups(scope)},
    }


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(value: object) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:16]


def _semver_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
