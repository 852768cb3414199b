"""A pipeline's nightly data-quality CronJob: `gameplay-analytics quality sessions` for
yesterday (UTC), gauges pushed to `spec.monitoring.pushgatewayUrl` as job `<pipeline>-quality`
(what `AnalyticsSessionCountVariance` reads). Pure.

03:17 UTC: yesterday is complete and still in the hot store (48 h), and the minute is off
the hour, when every other nightly job starts.
"""

from __future__ import annotations

from typing import Any

from gameplay_analytics.operator import workloads
from gameplay_analytics.operator.naming import Pipeline, labels, meta

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
    container = {
        "name": "quality",
        "image": pipeline.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["gameplay-analytics", "quality", "sessions"],
        "env": workloads.quality_env(pipeline),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    pod = {
        "metadata": {"labels": labels(pipeline, "quality")},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": workloads.RUN_AS_USER,
                "runAsGroup": workloads.RUN_AS_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(pipeline, job_name(pipeline.name), "quality"),
        "spec": {
            "schedule": SCHEDULE,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 1, "template": pod}},
        },
    }
