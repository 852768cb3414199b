"""The Grafana dashboards in `dashboards/`, built with grafana-foundation-sdk (Grafana's types).

`dashboards()` returns each dashboard as JSON-ready data; `python -m
gameplay_analytics.operator.dashboards` writes them to `dashboards/<uid>.json` (a test holds
the files equal to it, checks every expression with promtool and every metric name against
the registries of the components). Thresholds come from `alerts`, so a panel's red line is the
alert's.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

from gameplay_analytics.operator import alerts

__all__ = ["VARIABLES", "dashboards", "expressions", "write"]

VARIABLES = {"namespace": "games", "pipeline": "p", "__rate_interval": "5m"}
"""The template variables the expressions use, with an example value each (for checks)."""

_DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
_GW = 'namespace="$namespace",job="$pipeline-gateway"'
_AGG = 'namespace="$namespace",job="$pipeline-aggregator"'
_OP = 'namespace="$namespace",pipeline="$pipeline"'
_RATE = "[$__rate_interval]"


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by uid, as Grafana's JSON model."""
    built = [b.build() for b in (_ingest(), _pipeline(), _end_to_end(), _operator())]
    models = [json.loads(JSONEncoder(sort_keys=True).encode(d)) for d in built]
    return {model["uid"]: _numbered(model) for model in models}


def expressions(model: dict[str, Any]) -> list[str]:
    """Every PromQL expression of one dashboard: panel targets, and the series selector inside
    each variable's `label_values(<selector>, <label>)` (Grafana's syntax, not PromQL)."""
    exprs = [t["expr"] for p in model.get("panels", []) for t in p.get("targets", [])]
    queries = [v["query"] for v in model["templating"]["list"] if v.get("type") == "query"]
    return exprs + [re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", q) for q in queries]


def write(folder: Path) -> list[Path]:
    """Write each dashboard to `folder/<uid>.json`; returns the paths."""
    paths = []
    for uid, model in dashboards().items():
        path = folder / f"{uid}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


# -- private: one function per dashboard ----------------------------------------------------------


def _ingest() -> gd.Dashboard:
    fill = f"analytics_queue_depth{{{_GW}}} / analytics_queue_capacity{{{_GW}}}"
    return (
        _dashboard("analytics-ingest", "Analytics / Ingest", "What the gateways take in.")
        .with_panel(
            _series("Events received /s by category", "ops").with_target(
                _rate("analytics_events_received_total", _GW, "category")
            )
        )
        .with_panel(
            _series("Refused and dropped /s by reason", "ops")
            .description("sampling, consent and opt_out are intended; the rest alert")
            .with_target(_rate("analytics_drop_total", _GW, "reason"))
            .with_target(_rate("analytics_events_rejected_total", _GW, "code", "invalid: "))
        )
        .with_panel(
            _series("Queue fill by gateway", "percentunit")
            .description(f"the breaker slows clients over {alerts.QUEUE_FILL_RATIO:.0%} for 30 s")
            .max(1)
            .with_target(_q(fill, "{{instance}}"))
        )
        .with_panel(
            _series("Sessions", "short")
            .with_target(_q(f"sum(analytics_sessions_active{{{_GW}}})", "active"))
            .with_target(_q(f"sum(analytics_players_in_combat{{{_GW}}})", "in combat"))
            .with_target(_rate("analytics_sessions_aborted_total", _GW, "reason", "aborted: "))
        )
        .with_panel(
            _series("Publish latency (gateway to JetStream ack)", "s")
            .with_target(_quantile(0.5, "analytics_publish_latency_seconds", _GW))
            .with_target(_quantile(0.99, "analytics_publish_latency_seconds", _GW))
        )
    )


def _pipeline() -> gd.Dashboard:
    return (
        _dashboard("analytics-pipeline", "Analytics / Pipeline", "JetStream to Postgres.")
        .with_panel(
            _stat("Consumer lag", "s", alerts.LAG_PAGE_SECONDS).with_target(
                _q(f"max(analytics_consumer_lag_seconds{{{_AGG}}})", "lag")
            )
        )
        .with_panel(
            _stat("Pending messages", "short", None).with_target(
                _q(f"max(analytics_consumer_pending_messages{{{_AGG}}})", "pending")
            )
        )
        .with_panel(
            _series("Stored, deduplicated and dropped /s", "ops")
            .with_target(_rate("analytics_events_persisted_total", _AGG, legend="stored"))
            .with_target(_rate("analytics_events_deduplicated_total", _AGG, legend="duplicates"))
            .with_target(_rate("analytics_drop_total", _AGG, "reason", "dropped: "))
        )
        .with_panel(
            _series("Batch latency (fetch to ack)", "s")
            .with_target(_quantile(0.5, "analytics_aggregator_batch_seconds", _AGG))
            .with_target(_quantile(0.95, "analytics_aggregator_batch_seconds", _AGG))
        )
        .with_panel(
            _series("DLQ /s by reason", "ops").with_target(
                _rate("analytics_dlq_total", _AGG, "reason")
            )
        )
        .with_panel(
            _series("Errors /s by kind", "ops").with_target(
                _rate("analytics_aggregator_errors_total", _AGG, "kind")
            )
        )
    )


def _end_to_end() -> gd.Dashboard:
    sla = alerts.E2E_LATENCY_SLA_SECONDS
    e2e, batch = "analytics_e2e_latency_seconds", "analytics_aggregator_batch_seconds"
    return (
        _dashboard("analytics-e2e", "Analytics / End to end", "track() to Postgres commit.")
        .with_panel(
            _series(f"Track to commit (SLA: p95 under {sla:g} s)", "s")
            .span(24)
            .with_target(_quantile(0.5, e2e, _AGG))
            .with_target(_quantile(0.95, e2e, _AGG))
            .with_target(_quantile(0.99, e2e, _AGG))
            .thresholds(_red_over(sla))
        )
        .with_panel(
            _series("Where the time goes (p95 per stage)", "s")
            .span(24)
            .with_target(_quantile(0.95, "analytics_publish_latency_seconds", _GW, "publish"))
            .with_target(_q(f"max(analytics_consumer_lag_seconds{{{_AGG}}})", "in JetStream"))
            .with_target(_quantile(0.95, batch, _AGG, "aggregator batch"))
        )
    )


def _operator() -> gd.Dashboard:
    reconcile = f"rate(analytics_operator_reconcile_seconds_bucket{_RATE})"
    failures = f"analytics_operator_load_signal_failures_total{{{_OP}}}"
    return (
        _dashboard("analytics-operator", "Analytics / Operator", "Reconciles and the heartbeat.")
        .with_panel(
            _series("Reconciles /s by kind and result", "ops").with_target(
                _rate("analytics_operator_reconciles_total", "", "kind, result")
            )
        )
        .with_panel(
            _series("Reconcile duration p95", "s").with_target(
                _q(f"histogram_quantile(0.95, sum by (kind, le) ({reconcile}))", "{{kind}}")
            )
        )
        .with_panel(
            _series("Heartbeat sampling rate", "percentunit")
            .description("the sentence saying why: kubectl get samplingpolicies")
            .with_target(_q(f"analytics_operator_heartbeat_rate{{{_OP}}}", "rate"))
        )
        .with_panel(
            _series("Load signals the rate follows", "percentunit")
            .with_target(_q(f"analytics_operator_load_signal{{{_OP}}}", "{{signal}}"))
            .with_target(_q(f"increase({failures}{_RATE})", "Prometheus unavailable"))
        )
    )


def _numbered(model: dict[str, Any]) -> dict[str, Any]:
    """Panel ids and query refIds (A, B, …): Grafana wants them unique, the builders leave
    them unset; `options: null` is dropped so each panel keeps its plugin's defaults."""
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
        if panel.get("options") is None:
            panel.pop("options", None)
        for index, target in enumerate(panel.get("targets", [])):
            target["refId"] = chr(ord("A") + index)
    return model


# -- private: building blocks ---------------------------------------------------------------------


def _dashboard(uid: str, title: str, description: str) -> gd.Dashboard:
    return (
        gd.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["gameplay-analytics"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_variable(gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(_variable("namespace", "label_values(analytics_queue_depth, namespace)"))
        .with_variable(
            _variable(
                "pipeline",
                'label_values(analytics_queue_depth{namespace="$namespace"}, job)',
            ).regex("/(.*)-gateway/")
        )
    )


def _variable(name: str, query: str) -> gd.QueryVariable:
    return (
        gd.QueryVariable(name)
        .label(name)
        .datasource(_DS)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def _series(title: str, unit: str) -> timeseries.Panel:
    return timeseries.Panel().title(title).unit(unit).datasource(_DS).span(12).height(8).min(0)


def _stat(title: str, unit: str, red_at: float | None) -> stat.Panel:
    panel = stat.Panel().title(title).unit(unit).datasource(_DS).span(12).height(5)
    return panel if red_at is None else panel.thresholds(_red_over(red_at))


def _red_over(value: float) -> gd.ThresholdsConfig:
    return (
        gd.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=None, color="green"), dm.Threshold(value=value, color="red")])
    )


def _q(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(_DS)


def _rate(
    metric: str, where: str, by: str = "", prefix: str = "", *, legend: str = ""
) -> prometheus.Dataquery:
    """`sum [by (by)] (rate(metric{where}[$__rate_interval]))`, one series per `by` value."""
    series = f"{metric}{{{where}}}" if where else metric
    grouping = f" by ({by})" if by else ""
    labels = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",")) if by else ""
    return _q(f"sum{grouping} (rate({series}{_RATE}))", legend or prefix + labels)


def _quantile(
    q: float, histogram: str, where: str, legend: str | None = None
) -> prometheus.Dataquery:
    expr = f"histogram_quantile({q:g}, sum by (le) (rate({histogram}_bucket{{{where}}}{_RATE})))"
    return _q(expr, legend or f"p{q * 100:g}")


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "dashboards")):
        print(written)
