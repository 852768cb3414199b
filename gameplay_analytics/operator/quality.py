"""A pipeline's nightly data-quality CronJob: `gameplay-analytics quality sessions` for
yesterday (UTC), gauges pushed to `spec.monitoring.pushgatewayUrl` as job `<pipeline>-quality`
(what `AnalyticsSessionCountVariance` reads). Pure.

03:17 UTC: yesterday is complete and still in the hot store (48 h), and the minute is off
the hour, when every other nightly job starts.
"""

from __future__ import annotations

from typing import Any

from gameplay_analytics.operator import cronjobs, trust, workloads
from gameplay_analytics.operator.naming import Pipeline

__all__ = ["SCHEDULE", "cronjob", "job_name"]

SCHEDULE = "17 3 * * *"


def job_name(pipeline: str) -> str:
    """The CronJob's name, and the `job` label of the gauges it pushes."""
    return f"{pipeline}-quality"


def cronjob(pipeline: Pipeline) -> dict[str, Any]:
    spec = pipeline.spec
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    creds = spec.nats.credentials_secret_ref
    if creds is not None:
        mounts.append(
            {"name": "nats-creds", "mountPath": workloads.NATS_CREDS_MOUNT, "readOnly": True}
        )
        volumes.append({"name": "nats-creds", "secret": {"secretName": creds.name}})
    for mount, volume in trust.volumes(pipeline, "quality"):
        mounts.append(mount)
        volumes.append(volume)
    container = {
        "name": "quality",
        "image": pipeline.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["gameplay-analytics", "quality", "sessions"],
        "env": workloads.quality_env(pipeline),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": mounts,
    }
    return cronjobs.cronjob(
        pipeline,
        name=job_name(pipeline.name),
        component="quality",
        schedule=SCHEDULE,
        container=container,
        volumes=volumes,
    )
