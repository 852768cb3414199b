"""The daily insights CronJob (operator/daily.py, `spec.dailyInsights`): absent unless asked
for (and then pruned), valid for Kubernetes, restricted Pod Security, the daily job's
command on the hot store's DSN Secret, a folder a day."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gameplay_analytics.operator import manifests, rbac
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from tests.operator import kschema, pss
from tests.operator.test_manifests import FULL, by_kind, render

WANTED = {**FULL, "dailyInsights": {"schedule": "0 6 * * *", "claimName": "summaries",
                                    "image": "registry/ga-dbt:1", "dbt": "always"}}  # fmt: skip


def test_no_cronjob_unless_asked_and_then_it_is_pruned() -> None:
    unasked = {k: v for k, v in FULL.items() if k != "dailyInsights"}
    objects = render(unasked)
    assert ("CronJob", "p-daily-insights") not in by_kind(objects)
    pipeline = manifests.Pipeline("p", "games", AnalyticsPipelineSpec.model_validate(unasked))
    assert ("CronJob", "p-daily-insights") in manifests.prunable_objects(pipeline, objects)
    assert rbac.allows("batch", "cronjobs", "delete")


def test_the_cronjob_runs_the_daily_job() -> None:
    objects = render(WANTED)
    job = by_kind(objects)["CronJob", "p-daily-insights"]
    assert kschema.errors(job) == []
    assert pss.problems([job]) == {}
    assert job["spec"]["schedule"] == "0 6 * * *" and job["spec"]["timeZone"] == "Etc/UTC"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry/ga-dbt:1"
    assert container["command"] == [
        "gameplay-analytics", "insights", "daily", "--store", "hot",
        "--out", "/out/{day}", "--dbt", "always",
    ]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    secret = env["GAMEPLAY_ANALYTICS_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == FULL["postgres"]["dsnSecretRef"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["out"]["persistentVolumeClaim"] == {"claimName": "summaries"}
    # Without a claim: an emptyDir, and the pipeline's own image.
    plain = {**FULL, "dailyInsights": {}}
    job = by_kind(render(plain))["CronJob", "p-daily-insights"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}["out"]
    assert job["spec"]["schedule"] == "30 5 * * *"


def test_a_bad_schedule_is_refused() -> None:
    with pytest.raises(ValidationError):
        AnalyticsPipelineSpec.model_validate({**FULL, "dailyInsights": {"schedule": "daily"}})


def test_every_cronjob_run_has_a_deadline_under_its_interval() -> None:
    """`concurrencyPolicy: Forbid` skips a run while the last one is active: without a
    deadline, one run hung on a store that stopped answering stops every later one."""
    cronjobs = [o for o in render(WANTED) if o["kind"] == "CronJob"]
    assert {o["metadata"]["name"] for o in cronjobs} >= {"p-daily-insights", "p-quality"}
    for cron in cronjobs:
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        assert 0 < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 24 * 3600
