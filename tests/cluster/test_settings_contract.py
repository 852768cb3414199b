"""The settings contract: every GAMEPLAY_ANALYTICS_* variable the operator renders for a
process is a field of that process's settings model, and parses; an unknown one is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from gameplay_analytics.contract.natsnames import ENV_PREFIX
from gameplay_analytics.runtime import environment, logs
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings
from gameplay_analytics.runtime.gateway.settings import GatewaySettings
from tests.operator.test_manifests import render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("analyticspipeline-*.yaml"))
MODELS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "aggregator": AggregatorSettings,
}


def rendered_env(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    """The container's environment as the kubelet would build it: ConfigMap keys from the
    rendered ConfigMaps (a missing one fails), Secret keys as placeholder values."""
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for item in container["env"]:
        source = item.get("valueFrom")
        if source is None:
            env[item["name"]] = item["value"]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = maps[ref["name"]][ref["key"]]
        else:
            ref = source["secretKeyRef"]
            env[item["name"]] = f"secret-{ref['name']}-{ref['key']}"
    return env


@pytest.mark.parametrize("component", sorted(MODELS))
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_rendered_variable_is_read_by_the_process(
    example: Path, component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = yaml.safe_load(example.read_text())["spec"]
    env = rendered_env(render(spec), component)
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    model = MODELS[component]
    unread = sorted(
        set(ours) - environment.variables_of(model) - environment.variables_of(logs.LogSettings)
    )
    assert unread == [], f"{example.name}: the {component} has no settings field for {unread}"
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    settings = model()  # every value parses
    for name, value in ours.items():
        field = name.removeprefix(ENV_PREFIX).lower()
        if field not in model.model_fields:
            continue  # how the process logs: LogSettings
        read = getattr(settings, field)
        shown = read.get_secret_value() if hasattr(read, "get_secret_value") else read
        assert str(shown) == value or shown == type(shown)(value), (name, value, read)


def test_an_unknown_variable_is_refused_with_the_closest_name() -> None:
    env = {"GAMEPLAY_ANALYTICS_QUEUE_CAPACTY": "10", "GAMEPLAY_ANALYTICS_NATS_URL": "nats://x"}
    with pytest.raises(environment.UnknownSettings, match=r"did you mean .*QUEUE_CAPACITY"):
        environment.check_environment(env, models=MODELS.values())
    ok = {"GAMEPLAY_ANALYTICS_LOG_LEVEL": "debug", "GAMEPLAY_ANALYTICS_OPERATOR_PEERING": "x"}
    environment.check_environment(ok, models=[logs.LogSettings, *MODELS.values()])


@pytest.mark.parametrize("component", sorted(MODELS))
def test_a_process_with_an_unknown_variable_refuses_to_start(component: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)},
        "GAMEPLAY_ANALYTICS_JWT_SECRET": "s",
        "GAMEPLAY_ANALYTICS_NATS_CRED": "/x.creds",
    }
    result = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", component],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "GAMEPLAY_ANALYTICS_NATS_CRED (did you mean GAMEPLAY_ANALYTICS_NATS_CREDS?)" in (
        result.stderr
    )
