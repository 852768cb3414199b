"""The chart ships the operator's alerts: the same rules, from the same definition."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplay_analytics.operator import alerts
from tests.chart import support

TEMPLATE = support.CHART / "templates" / "prometheusrule.yaml"


def test_the_template_is_generated_from_the_alerts_module() -> None:
    assert TEMPLATE.read_text() == alerts.chart_template(), (
        "regenerate: python -m gameplay_analytics.operator.alerts > " + str(TEMPLATE)
    )


def test_full_values_render_the_operators_rules(full_values: dict[str, Any]) -> None:
    docs, _, _ = support.render(full_values)
    (rule,) = support.find(docs, "PrometheusRule")
    settings = full_values["alerts"]
    scope = alerts.AlertScope(
        group="gameplay-analytics",
        selector=settings["selector"],
        runbook_base=settings["runbookBaseUrl"],
    )
    assert rule["spec"]["groups"] == alerts.rule_groups(scope)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (.ci/run installs Debian's `prometheus`)",
)
def test_promtool_accepts_the_default_values_rules(tmp_path: Path) -> None:
    docs, _, _ = support.render({"alerts": {"enabled": True}})
    (rule,) = support.find(docs, "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(alerts.ALERTS)} rules found" in done.stdout
