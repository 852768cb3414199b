"""Dashboards and alerts read only what the components export, in PromQL that parses.

The exported names come from the components' real registries (gateway and operator: the
default registry their modules fill; aggregator: its per-instance registry); the parse is
the real `promtool check rules` on every expression as a recording rule.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

import gameplay_analytics.operator.metrics
import gameplay_analytics.runtime.gateway.metrics  # noqa: F401  (both fill the default registry)
from gameplay_analytics.insights import quality
from gameplay_analytics.operator import alerts, dashboards
from gameplay_analytics.runtime.aggregator.metrics import AggregatorMetrics

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "dashboards"
SCOPE = alerts.AlertScope(group="t", selector='namespace="ns"')

PROMETHEUS_OWN = {"up"}


def _exported(registry: CollectorRegistry) -> set[str]:
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "summary": ["_count", "_sum", ""],
    }
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def _all_expressions() -> dict[str, str]:
    found = {
        f"{uid}#{n}": expr
        for uid, model in dashboards.dashboards().items()
        for n, expr in enumerate(dashboards.expressions(model))
    }
    found.update({r["alert"]: r["expr"] for r in alerts.rule_groups(SCOPE)[0]["rules"]})
    return found


def _concrete(expr: str) -> str:
    for name, value in dashboards.VARIABLES.items():
        expr = expr.replace(f"${name}", value)
    return expr


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    generated = dashboards.dashboards()
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(generated)
    for uid, model in generated.items():
        assert json.loads((FOLDER / f"{uid}.json").read_text()) == model, (
            "regenerate: python -m gameplay_analytics.operator.dashboards"
        )


def test_the_four_dashboards_show_what_the_issue_asks() -> None:
    text = {uid: json.dumps(model) for uid, model in dashboards.dashboards().items()}
    assert set(text) == {
        "analytics-ingest",
        "analytics-pipeline",
        "analytics-e2e",
        "analytics-operator",
    }
    for uid, metric in [
        ("analytics-ingest", "analytics_drop_total"),
        ("analytics-ingest", "analytics_queue_depth"),
        ("analytics-ingest", "analytics_sessions_active"),
        ("analytics-pipeline", "analytics_consumer_lag_seconds"),
        ("analytics-pipeline", "analytics_aggregator_batch_seconds_bucket"),
        ("analytics-pipeline", "analytics_events_persisted_total"),
        ("analytics-pipeline", "analytics_events_deduplicated_total"),
        ("analytics-pipeline", "analytics_dlq_total"),
        ("analytics-e2e", "analytics_e2e_latency_seconds_bucket"),
        ("analytics-operator", "analytics_operator_reconciles_total"),
        ("analytics-operator", "analytics_operator_heartbeat_rate"),
    ]:
        assert metric in text[uid], (uid, metric)


def test_every_metric_named_is_exported_by_a_component() -> None:
    exported = _exported(REGISTRY) | _exported(AggregatorMetrics().registry)
    nightly = quality.SessionCheck(day=dt.date(2026, 1, 1), gateway=1, stored=1)
    exported |= _exported(quality.metrics(nightly))  # pushed by `quality sessions`
    named = {
        where: set(re.findall(r"\b(analytics_\w+|up)\b(?!\s*\()", expr))
        for where, expr in _all_expressions().items()
    }
    unknown = {
        where: sorted(names - exported - PROMETHEUS_OWN)
        for where, names in named.items()
        if names - exported - PROMETHEUS_OWN
    }
    assert unknown == {}
    assert all(named.values()), "every expression names a metric"


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (.ci/run installs Debian's `prometheus`)",
)
def test_every_expression_parses(tmp_path: Path) -> None:
    rules = [
        {"record": f"check:{n}", "expr": _concrete(expr)}
        for n, expr in enumerate(_all_expressions().values())
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout
