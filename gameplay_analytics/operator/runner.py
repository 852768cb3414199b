"""`gameplay-analytics operator`: kopf with peering, a liveness endpoint, metrics and handlers.

Several replicas may run: each takes a random peering priority at start, so the one with the
highest is active and the others stand by (kopf pauses every replica when priorities are
equal, which two replicas of one Deployment would otherwise have). When the active replica
goes, its peering entry expires (kopf's lifetime, 60 s) and the next one resumes.

Scanning is off: the chart installs the CRDs before the operator starts, and least-privilege
RBAC has no namespace or CRD watch.
"""

from __future__ import annotations

import asyncio
import secrets

import kopf
import kubernetes
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gameplay_analytics.operator import handlers, naming
from gameplay_analytics.runtime.probes import ProbeServer

__all__ = ["OperatorSettings", "run_operator"]


class OperatorSettings(BaseSettings):
    """The operator process's settings (`GAMEPLAY_ANALYTICS_OPERATOR_…`)."""

    model_config = SettingsConfigDict(env_prefix="GAMEPLAY_ANALYTICS_OPERATOR_")

    namespace: str | None = Field(default=None, description="watch one namespace; unset: all")
    resync_seconds: float = Field(default=60.0, gt=0, description="drift-repair interval")
    peering: str = Field(default="gameplay-analytics", description="KopfPeering name")
    liveness_port: int = Field(default=8080, ge=1, le=65535)
    metrics_port: int = Field(
        default=9102, ge=1, le=65535, description="/metrics (reconciles, process) for Prometheus"
    )
    operand_image: str | None = Field(
        default=None,
        min_length=1,
        description="image of pipelines without spec.image; unset: this release's own image",
    )
    priority: int | None = Field(
        default=None, ge=1, description="peering priority; unset: random, distinct per replica"
    )


def peering_priority() -> int:
    """A random priority: two replicas practically never draw the same (p = 2^-31)."""
    return 1 + secrets.randbelow(2**31 - 1)


def _load_kube_config() -> None:
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


async def run_operator(
    *,
    namespace: str | None,
    resync_seconds: float = 60.0,
    peering: str | None = "gameplay-analytics",
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz",
    ready_flag: asyncio.Event | None = None,
    stop_flag: asyncio.Event | None = None,
    metrics_port: int | None = None,
    operand_image: str | None = None,
    priority: int | None = None,
) -> None:
    """Run until cancelled or `stop_flag` is set.

    `namespace=None` watches every namespace (ClusterKopfPeering), a name watches one
    (KopfPeering there). `peering=None` runs standalone: no peering resource, for tests and
    single-replica installs. `metrics_port` serves `/metrics` (none when None).
    `operand_image` is the image of pipelines that name none (None: this release's).
    `priority` is the peering priority (None: random, see `peering_priority`).
    """
    if operand_image is not None:
        naming.OPERAND_IMAGE.set(operand_image)  # inherited by kopf's handler tasks
    await asyncio.to_thread(_load_kube_config)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, resync_seconds=resync_seconds)
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.posting.level = 20  # INFO and up become Kubernetes Events
    settings.watching.server_timeout = 300
    probes = None
    if metrics_port is not None:
        probes = ProbeServer(port=metrics_port, ready=lambda: True)
        await probes.start()
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=peering is None,
            priority=peering_priority() if priority is None else priority,
            peering_name=peering,
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else (),
            liveness_endpoint=liveness_endpoint,
            ready_flag=ready_flag,
            stop_flag=stop_flag,
        )
    finally:
        if probes is not None:
            await probes.close()


def main() -> None:
    """Entry for the CLI: settings from the environment."""
    config = OperatorSettings()
    asyncio.run(
        run_operator(
            namespace=config.namespace,
            resync_seconds=config.resync_seconds,
            peering=config.peering,
            liveness_endpoint=f"http://0.0.0.0:{config.liveness_port}/healthz",
            metrics_port=config.metrics_port,
            operand_image=config.operand_image,
            priority=config.priority,
        )
    )
