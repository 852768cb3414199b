"""Each pipeline gets its nightly session check as a CronJob that runs the real command with
the environment that command reads."""

from __future__ import annotations

from typing import Any

from gameplay_analytics import cli
from tests.operator import kschema
from tests.operator.test_manifests import by_kind, render


def _cronjob(spec: dict[str, Any]) -> dict[str, Any]:
    return by_kind(render(spec))["CronJob", "p-quality"]


def test_the_cronjob_runs_the_session_check_nightly_and_validates() -> None:
    job = _cronjob({})
    assert job["spec"]["schedule"] == "17 3 * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["gameplay-analytics", "quality", "sessions"]
    args = cli._parser().parse_args(container["command"][1:])  # the CLI accepts it
    assert args.quality_check == "sessions"
    assert pod["restartPolicy"] == "Never"
    assert kschema.errors(job) == []


def test_the_environment_is_what_the_command_reads() -> None:
    env = {e["name"]: e for e in _cronjob({})["spec"]["jobTemplate"]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}  # fmt: skip
    assert env["GAMEPLAY_ANALYTICS_PIPELINE"]["value"] == "p"
    assert env["GAMEPLAY_ANALYTICS_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"]
    assert env["GAMEPLAY_ANALYTICS_NATS_URL"]["valueFrom"]["configMapKeyRef"]["key"] == "NATS_URL"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "GAMEPLAY_ANALYTICS_PUSHGATEWAY_URL" not in env
    pushed = _cronjob({"monitoring": {"pushgatewayUrl": "http://pushgateway.monitoring:9091"}})
    env = {e["name"]: e for e in pushed["spec"]["jobTemplate"]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}  # fmt: skip
    assert (
        env["GAMEPLAY_ANALYTICS_PUSHGATEWAY_URL"]["value"] == "http://pushgateway.monitoring:9091"
    )
