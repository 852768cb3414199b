"""The pipeline's CronJobs (the nightly quality check, the daily insights job): one restricted
pod shape, UTC schedules, one run at a time. Pure."""

from __future__ import annotations

from typing import Any, Final

from gameplay_analytics.operator import workloads
from gameplay_analytics.operator.naming import Pipeline, labels, meta

__all__ = ["CONTAINER_SECURITY", "JOB_DEADLINE_S", "cronjob"]

CONTAINER_SECURITY: Final = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
# A run still going after this is failed: with `concurrencyPolicy: Forbid`, one run hung on a
# store that stopped answering would otherwise skip every later one. Under the daily interval.
JOB_DEADLINE_S: Final = 6 * 3600


def cronjob(
    pipeline: Pipeline,
    *,
    name: str,
    component: str,
    schedule: str,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    fs_group: bool = False,
) -> dict[str, Any]:
    """A CronJob running `container` (given the restricted securityContext) with `volumes`;
    `fs_group` makes mounted volumes (a PVC) writable by the pod's user."""
    security: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": workloads.RUN_AS_USER,
        "runAsGroup": workloads.RUN_AS_USER,
    }
    if fs_group:
        security["fsGroup"] = workloads.RUN_AS_USER
    security["seccompProfile"] = {"type": "RuntimeDefault"}
    pod = {
        "metadata": {"labels": labels(pipeline, component)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": security,
            "containers": [{**container, "securityContext": dict(CONTAINER_SECURITY)}],
            "volumes": volumes,
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(pipeline, name, component),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": JOB_DEADLINE_S,
                    "template": pod,
                }
            },
        },
    }
