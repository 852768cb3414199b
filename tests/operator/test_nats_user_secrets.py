"""`spec.nats.users`: each component's pods read their own NATS user Secret (and only it), its
rotation rolls only them, and `.creds` and users are one or the other."""

from __future__ import annotations

from typing import Any

import pytest

from gameplay_analytics.operator import workloads
from gameplay_analytics.operator.manifests import Pipeline
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from tests.operator.test_manifests import by_kind, container, env, render

USERS = {c: {"name": f"nats-{c}"} for c in ("gateway", "aggregator", "operator", "quality")}
ENV = "GAMEPLAY_ANALYTICS_"


def _login(values: dict[str, Any]) -> tuple[str | None, str | None]:
    """(Secret name, password key) of a container's NATS login; both from one Secret."""
    user = (values.get(f"{ENV}NATS_USER") or {}).get("secretKeyRef", {})
    password = (values.get(f"{ENV}NATS_PASSWORD") or {}).get("secretKeyRef", {})
    assert user.get("name") == password.get("name")
    return password.get("name"), password.get("key")


def test_each_component_reads_its_own_user_secret() -> None:
    objects = render({"nats": {"users": USERS}})
    gateway = env(container(objects, "p-gateway"))
    aggregator = env(container(objects, "p-aggregator"))
    cron = by_kind(objects)["CronJob", "p-quality"]
    (quality_container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert _login(gateway) == ("nats-gateway", "password")
    assert _login(aggregator) == ("nats-aggregator", "password")
    assert _login(env(quality_container)) == ("nats-quality", "password")
    assert gateway[f"{ENV}NATS_USER"]["secretKeyRef"]["key"] == workloads.NATS_USER_KEY
    assert f"{ENV}NATS_CREDS" not in gateway  # no .creds file with users
    pipeline = Pipeline(
        "p", "games", AnalyticsPipelineSpec.model_validate({"nats": {"users": USERS}})
    )
    assert "nats-gateway" in workloads.secret_refs(pipeline, "gateway")
    assert "nats-aggregator" not in workloads.secret_refs(pipeline, "gateway")
    assert "nats-aggregator" in workloads.secret_refs(pipeline, "aggregator")
    assert not {"nats-operator"} & set(workloads.secret_refs(pipeline, "aggregator"))


def test_without_users_no_nats_login_is_rendered() -> None:
    objects = render({})
    assert f"{ENV}NATS_USER" not in env(container(objects, "p-gateway"))


def test_creds_file_and_users_are_one_or_the_other() -> None:
    creds = {"name": "analytics-nats", "key": "operator.creds"}
    with pytest.raises(ValueError, match="credentialsSecretRef or users, not both"):
        AnalyticsPipelineSpec.model_validate(
            {"nats": {"credentialsSecretRef": creds, "users": USERS}}
        )
