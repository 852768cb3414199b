"""A pipeline's daily insights CronJob (`spec.dailyInsights`): `gameplay-analytics insights
daily` on the hot store — the dbt marts (when the image has dbt) and the day's summary in
`/out/<day>/` (a PVC when `claimName` is set). Pure; rendered like operator/quality.py.
"""

from __future__ import annotations

from typing import Any

from gameplay_analytics.operator import cronjobs, trust, workloads
from gameplay_analytics.operator.naming import Pipeline

__all__ = ["OUT", "cronjob", "job_name"]

OUT = "/out"


def job_name(pipeline: str) -> str:
    return f"{pipeline}-daily-insights"


def cronjob(pipeline: Pipeline) -> dict[str, Any] | None:
    """The CronJob, or None when the pipeline wants none."""
    spec = pipeline.spec
    daily = spec.daily_insights
    if daily is None:
        return None
    out: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": daily.claim_name}}
        if daily.claim_name
        else {"emptyDir": {"sizeLimit": "256Mi"}}
    )
    dsn = spec.postgres.dsn_secret_ref
    tls = trust.volumes(pipeline, "daily-insights")
    container = {
        "name": "daily-insights",
        "image": daily.image or pipeline.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": [
            "gameplay-analytics",
            "insights",
            "daily",
            "--store",
            "hot",
            "--out",
            f"{OUT}/{{day}}",
            "--dbt",
            daily.dbt,
        ],
        "env": [
            {
                "name": f"{workloads.ENV_PREFIX}POSTGRES_DSN",
                "valueFrom": {"secretKeyRef": {"name": dsn.name, "key": dsn.key}},
            },
            # dbt writes nothing under HOME with usage stats off; /tmp in case a plugin does.
            {"name": "HOME", "value": "/tmp"},
            {"name": "DBT_SEND_ANONYMOUS_USAGE_STATS", "value": "false"},
            *trust.tls_env(pipeline, "daily-insights"),  # PGSSLMODE / PGSSLROOTCERT
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "out", "mountPath": OUT},
            *(mount for mount, _ in tls),
        ],
    }
    return cronjobs.cronjob(
        pipeline,
        name=job_name(pipeline.name),
        component="daily-insights",
        schedule=daily.schedule,
        container=container,
        volumes=[
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            {"name": "out", **out},
            *(volume for _, volume in tls),
        ],
        fs_group=True,
    )
