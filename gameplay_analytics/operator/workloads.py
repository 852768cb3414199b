"""The gateway and aggregator Deployments: containers, environment, volumes. Pure.

The environment follows the runtime's settings models (`GAMEPLAY_ANALYTICS_*`); non-secret
values come from the runtime ConfigMap, whose digest is on the pod template (a change rolls
the pods), and so is the digest of the Secrets the pods read (a rotation rolls them too).
The privacy keys (the salt Secret, from which the profile secret derives, and the GeoIP
database) go to the gateways alone: they pseudonymise and geolocate before publishing, and
the aggregators never see a raw identifier (privacy/edge.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import natsnames
from gameplay_analytics.operator import trust
from gameplay_analytics.operator.naming import (
    CONFIG_HASH_ANNOTATION,
    SECRETS_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    Pipeline,
    digest,
    labels,
    meta,
    nats_names,
    object_names,
    selector_labels,
)

__all__ = [
    "aggregator_deployment",
    "config_map_refs",
    "gateway_deployment",
    "quality_env",
    "runtime_config",
    "secret_refs",
    "warehouse_root",
]

ENV_PREFIX = natsnames.ENV_PREFIX
RUN_AS_USER = 10001
CONFIG_MOUNT = "/etc/gameplay-analytics"
GEOIP_MOUNT = "/var/lib/geoip"
NATS_CREDS_MOUNT = "/var/run/secrets/nats"
NATS_USER_KEY, NATS_PASSWORD_KEY = "user", "password"  # the keys of a NATS user's Secret
WAREHOUSE_MOUNT = "/var/lib/gameplay-analytics/warehouse"
DEFAULT_GATEWAY_REPLICAS = 2


def runtime_config(pipeline: Pipeline) -> dict[str, str]:
    """Non-secret settings of gateway and aggregator, as env var values (each Deployment
    takes the keys its settings model reads)."""
    spec = pipeline.spec
    data = {
        "NATS_URL": spec.nats.url,
        "SHARD": spec.gateway.shard,
        "HOT_RETENTION_HOURS": str(spec.retention.hot_hours),
        "WARM_RETENTION_DAYS": str(spec.retention.warm_days),
    }
    if spec.gateway.queue_capacity is not None:
        data["QUEUE_CAPACITY"] = str(spec.gateway.queue_capacity)
    if spec.aggregator.batch_size is not None:
        data["BATCH_SIZE"] = str(spec.aggregator.batch_size)
    root = warehouse_root(pipeline)
    if root is not None:
        data["WAREHOUSE_ROOT"] = root
    if spec.object_store is not None and spec.object_store.endpoint:
        data["S3_ENDPOINT"] = spec.object_store.endpoint
    if spec.privacy.geoip is not None:
        data["GEOIP_DB"] = f"{GEOIP_MOUNT}/{spec.privacy.geoip.file}"
    if spec.nats.credentials_secret_ref is not None:
        data["NATS_CREDS"] = f"{NATS_CREDS_MOUNT}/{spec.nats.credentials_secret_ref.key}"
    data.update(nats_names(pipeline).env())
    return data


def warehouse_root(pipeline: Pipeline) -> str | None:
    """Where the aggregators export Parquet: s3://bucket/prefix, the warm volume's mount, or
    None (export off)."""
    store = pipeline.spec.object_store
    if store is not None:
        return f"s3://{store.bucket}/{store.prefix.strip('/')}".rstrip("/")
    return WAREHOUSE_MOUNT if pipeline.spec.warm_volume is not None else None


def secret_refs(pipeline: Pipeline, component: str) -> list[str]:
    """The Secrets a component's pods read (env or volume): their digest is on its template."""
    spec = pipeline.spec
    refs = list(trust.secret_refs(pipeline, component))
    if component == "gateway":
        refs.append(spec.privacy.salt_secret_ref.name)  # the edge step (privacy/edge.py)
    else:
        refs.append(spec.postgres.dsn_secret_ref.name)
        if spec.object_store is not None:
            refs.append(spec.object_store.credentials_secret_ref.name)
    if spec.nats.credentials_secret_ref is not None:
        refs.append(spec.nats.credentials_secret_ref.name)
    user = _nats_user_secret(pipeline, component)
    if user is not None:
        refs.append(user)
    return sorted(set(refs))


def config_map_refs(pipeline: Pipeline, component: str) -> list[str]:
    """The user's ConfigMaps a component's pods mount (not ours: those are hashed already)."""
    geo = pipeline.spec.privacy.geoip
    if component == "gateway" and geo is not None and geo.config_map_name:
        return [geo.config_map_name]
    return []


def _nats_keys(*, with_consumer: bool) -> list[str]:
    return ["NATS_URL", "NATS_CREDS", *natsnames.PipelineNames().env(with_consumer=with_consumer)]


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


def _nats_user_secret(pipeline: Pipeline, component: str) -> str | None:
    """The Secret of `component`'s own NATS user (`spec.nats.users`), if the spec names one."""
    users = pipeline.spec.nats.users
    ref = getattr(users, component, None) if users is not None else None
    return ref.name if ref is not None else None


def _nats_user(pipeline: Pipeline, component: str) -> list[dict[str, Any]]:
    """`…_NATS_USER` and `…_NATS_PASSWORD` from the component's user Secret, if any."""
    name = _nats_user_secret(pipeline, component)
    if name is None:
        return []
    return [
        _from_secret(f"{ENV_PREFIX}NATS_USER", name, NATS_USER_KEY),
        _from_secret(f"{ENV_PREFIX}NATS_PASSWORD", name, NATS_PASSWORD_KEY),
    ]


def _literal(key: str, value: object) -> dict[str, Any]:
    return {"name": f"{ENV_PREFIX}{key}", "value": str(value)}


def gateway_deployment(
    pipeline: Pipeline, *, config_hash: str, secrets_hash: str
) -> dict[str, Any]:
    spec = pipeline.spec
    gateway = spec.gateway
    runtime = runtime_config(pipeline)
    env = [
        *_from_config(
            pipeline,
            [*_nats_keys(with_consumer=False), "QUEUE_CAPACITY", "SHARD", "GEOIP_DB"],
            runtime,
        ),
        _literal("WS_PORT", gateway.port),
        _literal("METRICS_PORT", gateway.metrics_port),
        _literal("PIPELINE", pipeline.name),  # the `pipeline` of its log lines
        *_nats_user(pipeline, "gateway"),
        *trust.gateway_auth_env(pipeline),
        *trust.tls_env(pipeline, "gateway"),
        _salt(pipeline),
        *_config_files(breaker=True),
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
        secrets_hash=secrets_hash,
    )


def aggregator_deployment(
    pipeline: Pipeline, *, config_hash: str, secrets_hash: str
) -> dict[str, Any]:
    spec = pipeline.spec
    aggregator = spec.aggregator
    runtime = runtime_config(pipeline)
    keys = [
        *_nats_keys(with_consumer=True),
        "WAREHOUSE_ROOT",
        "S3_ENDPOINT",
        "BATCH_SIZE",
        "HOT_RETENTION_HOURS",
        "WARM_RETENTION_DAYS",
    ]
    env = [
        *_from_config(pipeline, keys, runtime),
        _literal("METRICS_PORT", aggregator.metrics_port),
        _literal("PIPELINE", pipeline.name),
        *_nats_user(pipeline, "aggregator"),
        _from_secret(
            f"{ENV_PREFIX}POSTGRES_DSN",
            spec.postgres.dsn_secret_ref.name,
            spec.postgres.dsn_secret_ref.key,
        ),
        *_object_store_credentials(pipeline),
        *trust.tls_env(pipeline, "aggregator"),
        *_config_files(breaker=False),
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
        secrets_hash=secrets_hash,
        aggregator=True,
    )


def _object_store_credentials(pipeline: Pipeline) -> list[dict[str, Any]]:
    store = pipeline.spec.object_store
    if store is None:
        return []
    name = store.credentials_secret_ref.name
    return [
        _from_secret("AWS_ACCESS_KEY_ID", name, "AWS_ACCESS_KEY_ID"),
        _from_secret("AWS_SECRET_ACCESS_KEY", name, "AWS_SECRET_ACCESS_KEY"),
    ]


def quality_env(pipeline: Pipeline) -> list[Any]:
    """The nightly quality check's environment: NATS (with the pipeline's names), the hot
    store, the pipeline and its namespace, the Pushgateway when `monitoring` names one."""
    spec = pipeline.spec
    env = [
        *_from_config(pipeline, _nats_keys(with_consumer=False), runtime_config(pipeline)),
        _literal("PIPELINE", pipeline.name),
        *_nats_user(pipeline, "quality"),
        _from_secret(
            f"{ENV_PREFIX}POSTGRES_DSN",
            spec.postgres.dsn_secret_ref.name,
            spec.postgres.dsn_secret_ref.key,
        ),
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        *trust.tls_env(pipeline, "quality"),
    ]
    if spec.monitoring.pushgateway_url is not None:
        env.append(_literal("PUSHGATEWAY_URL", spec.monitoring.pushgateway_url))
    return env


def _salt(pipeline: Pipeline) -> dict[str, Any]:
    ref = pipeline.spec.privacy.salt_secret_ref
    return _from_secret(f"{ENV_PREFIX}SALT_SECRET", ref.name, ref.key)


def _config_files(*, breaker: bool) -> list[dict[str, Any]]:
    # The cold-start copies of what NATS KV hot-reloads (used until the first KV read); the
    # breaker is the gateways' alone.
    files = [
        {"name": f"{ENV_PREFIX}SAMPLING_FILE", "value": f"{CONFIG_MOUNT}/sampling.json"},
        {"name": f"{ENV_PREFIX}SCHEMAS_FILE", "value": f"{CONFIG_MOUNT}/schemas.json"},
    ]
    if breaker:
        files.append({"name": f"{ENV_PREFIX}BREAKER_FILE", "value": f"{CONFIG_MOUNT}/breaker.json"})
    return files


def _deployment(
    pipeline: Pipeline,
    component: str,
    *,
    replicas: int | None,
    env: list[Any],
    ports: list[dict[str, Any]],
    resources: dict[str, Any],
    config_hash: str,
    secrets_hash: str,
    aggregator: bool = False,  # its own volume: the warm store's
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
    for mount, volume in trust.volumes(pipeline, component):
        mounts.append(mount)
        volumes.append(volume)
    geo = spec.privacy.geoip
    if not aggregator and geo is not None:  # the gateway geolocates (privacy/edge.py)
        mounts.append({"name": "geoip", "mountPath": GEOIP_MOUNT, "readOnly": True})
        source: dict[str, Any] = (
            {"persistentVolumeClaim": {"claimName": geo.claim_name, "readOnly": True}}
            if geo.claim_name
            else {"configMap": {"name": geo.config_map_name}}
        )
        volumes.append({"name": "geoip", **source})
    warm = spec.warm_volume
    if aggregator and warm is not None:
        mounts.append({"name": "warehouse", "mountPath": WAREHOUSE_MOUNT})
        volumes.append(
            {"name": "warehouse", "persistentVolumeClaim": {"claimName": warm.claim_name}}
        )
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10}
    container = {
        "name": component,
        "image": pipeline.image,
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
            "labels": labels(pipeline, component),
            "annotations": {
                CONFIG_HASH_ANNOTATION: config_hash,
                SECRETS_HASH_ANNOTATION: secrets_hash,
            },
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
    metadata = meta(pipeline, getattr(names, component), component)
    metadata["annotations"] = {TEMPLATE_HASH_ANNOTATION: digest(template)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": deployment_spec,
    }
