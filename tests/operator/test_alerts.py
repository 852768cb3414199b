"""The pipeline's alerts, checked and unit-tested by the real `promtool`: each fires when it
should and stays silent when it should not (a brief spike, intended drops, another pipeline).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplay_analytics.operator import alerts
from tests.operator.test_manifests import by_kind, render

ROOT = Path(__file__).resolve().parents[2]
SCOPE = alerts.AlertScope(
    group="t", selector='namespace="ns",job=~"p-gateway|p-aggregator|p-quality"'
)
AGG = 'namespace="ns",job="p-aggregator"'
GW = 'namespace="ns",job="p-gateway",instance="10.0.0.1:9100"'

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (.ci/run installs Debian's `prometheus`)",
)


@dataclasses.dataclass(frozen=True)
class Case:
    """Input series (PromQL series -> promtool values) and, at `at`, the labels firing."""

    series: dict[str, str]
    at: str
    firing: list[dict[str, str]]


def _buckets(name: str, per_minute: dict[str, int]) -> dict[str, str]:
    return {f'{name}{{{AGG},le="{le}"}}': f"0+{n}x30" for le, n in per_minute.items()}


VARIANCE = "analytics_quality_session_variance_ratio"
AGG_LABELS = {"namespace": "ns", "job": "p-aggregator"}
CASES: dict[str, dict[str, Case]] = {
    "AnalyticsConsumerLagHigh": {
        "fires when lag grows past 2 min for 5 min": Case(
            {f"analytics_consumer_lag_seconds{{{AGG}}}": "0+30x20"}, "12m", [AGG_LABELS]
        ),
        "silent under 2 min": Case(
            {f"analytics_consumer_lag_seconds{{{AGG}}}": "100x20"}, "12m", []
        ),
        "silent after a 3 min spike": Case(
            {f"analytics_consumer_lag_seconds{{{AGG}}}": "0 300 300 300 0x16"}, "8m", []
        ),
    },
    "AnalyticsAggregatorErrors": {
        "fires when a seventh of attempts fail": Case(
            {
                f'analytics_aggregator_errors_total{{{AGG},kind="transient"}}': "0+10x30",
                f"analytics_aggregator_batch_seconds_count{{{AGG}}}": "0+60x30",
            },
            "20m",
            [AGG_LABELS],
        ),
        "silent on a rare retry": Case(
            {
                f'analytics_aggregator_errors_total{{{AGG},kind="transient"}}': "0+1x30",
                f"analytics_aggregator_batch_seconds_count{{{AGG}}}": "0+60x30",
            },
            "20m",
            [],
        ),
    },
    "AnalyticsEventsDropped": {
        "fires on backpressure drops": Case(
            {f'analytics_drop_total{{{AGG},reason="backpressure"}}': "0+5x30"},
            "20m",
            [{**AGG_LABELS, "reason": "backpressure"}],
        ),
        "silent on sampling, consent and opt-out drops": Case(
            {
                f'analytics_drop_total{{{AGG},reason="{reason}"}}': "0+1000x30"
                for reason in alerts.INTENDED_DROP_REASONS
            },
            "20m",
            [],
        ),
    },
    "AnalyticsDLQGrowing": {
        "fires while the DLQ keeps growing": Case(
            {f'analytics_dlq_total{{{AGG},reason="unstorable"}}': "0+1x40"},
            "35m",
            [{**AGG_LABELS, "reason": "unstorable"}],
        ),
        "silent when it stopped growing": Case(
            {f'analytics_dlq_total{{{AGG},reason="unstorable"}}': "5x40"}, "35m", []
        ),
    },
    "AnalyticsQueueNearlyFull": {
        "fires over 80 % for 30 s": Case(
            {
                f"analytics_queue_depth{{{GW}}}": "4500x10",
                f"analytics_queue_capacity{{{GW}}}": "5000x10",
            },
            "3m",
            [{"namespace": "ns", "job": "p-gateway"}],
        ),
        "silent at 60 %": Case(
            {
                f"analytics_queue_depth{{{GW}}}": "3000x10",
                f"analytics_queue_capacity{{{GW}}}": "5000x10",
            },
            "3m",
            [],
        ),
    },
    "AnalyticsEndToEndLatencyHigh": {
        "fires when p95 is about 1 s": Case(
            _buckets(
                "analytics_e2e_latency_seconds_bucket",
                {"0.25": 1, "0.5": 2, "1": 100, "+Inf": 100},
            ),
            "20m",
            [{"namespace": "ns"}],
        ),
        "silent when p95 is under 250 ms": Case(
            _buckets(
                "analytics_e2e_latency_seconds_bucket",
                {"0.25": 100, "0.5": 100, "1": 100, "+Inf": 100},
            ),
            "20m",
            [],
        ),
    },
    "AnalyticsComponentDown": {
        "fires when a gateway is unscrapeable for 5 min": Case(
            {f"up{{{GW}}}": "0x10"},
            "7m",
            [{"namespace": "ns", "job": "p-gateway", "instance": "10.0.0.1:9100"}],
        ),
        "silent when up, or when another pipeline is down": Case(
            {f"up{{{GW}}}": "1x10", 'up{namespace="ns",job="q-gateway",instance="x"}': "0x10"},
            "7m",
            [],
        ),
    },
    "AnalyticsSessionCountVariance": {
        "fires when the nightly check finds 25 %": Case(
            {f'{VARIANCE}{{namespace="ns",job="p-quality"}}': "0.25x5"},
            "2m",
            [{"namespace": "ns"}],
        ),
        "silent at 2 %, or for another pipeline's check": Case(
            {
                f'{VARIANCE}{{namespace="ns",job="p-quality"}}': "0.02x5",
                f'{VARIANCE}{{namespace="ns",job="q-quality"}}': "0.5x5",
            },
            "2m",
            [],
        ),
    },
}


def test_every_alert_has_cases_and_a_runbook() -> None:
    assert set(CASES) == set(alerts.ALERTS)
    for name in alerts.ALERTS:
        assert (ROOT / "docs" / "runbooks" / f"{name}.md").is_file(), name
    assert {r["alert"] for r in alerts.rule_groups(SCOPE)[0]["rules"]} == set(alerts.ALERTS)


def test_the_operator_renders_the_same_rules_for_its_pipeline() -> None:
    rule = by_kind(render({}, monitoring=True))["PrometheusRule", "p"]
    selector = 'namespace="games",job=~"p-gateway|p-aggregator|p-quality"'
    scope = alerts.AlertScope(group="gameplay-analytics.p", selector=selector)
    assert rule["spec"]["groups"] == alerts.rule_groups(scope)


@promtool
def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    path = _rules_file(tmp_path)
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@promtool
@pytest.mark.parametrize(
    ("alert", "case"), [(a, c) for a, cases in CASES.items() for c in cases], ids=str
)
def test_alert(alert: str, case: str, tmp_path: Path) -> None:
    given = CASES[alert][case]
    rules = _rules_file(tmp_path)
    rule = next(r for r in alerts.rule_groups(SCOPE)[0]["rules"] if r["alert"] == alert)
    expected = [
        {
            "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
            "exp_annotations": {k: _expand(v, labels) for k, v in rule["annotations"].items()},
        }
        for labels in given.firing
    ]
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in given.series.items()],
                "alert_rule_test": [
                    {"eval_time": given.at, "alertname": alert, "exp_alerts": expected}
                ],
            }
        ],
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(
        ["promtool", "test", "rules", path.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": alerts.rule_groups(SCOPE)}, sort_keys=False))
    return path


def _expand(template: str, labels: dict[str, Any]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: str(labels.get(m[1], "")), template)
