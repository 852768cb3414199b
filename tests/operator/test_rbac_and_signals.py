"""Least privilege (every request the operator made is in REQUIRED_RULES) and load signals."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
from aiohttp import web

from gameplay_analytics.contract import messages
from gameplay_analytics.operator import loadsignals, natsconfig, rbac
from gameplay_analytics.operator.manifests import Pipeline
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from tests.operator.conftest import condition, cr_url, until
from tests.operator.emulator import Emulator
from tests.operator.test_operator import AP, P1_BUCKET, pipeline

VERBS = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.DELETE: "delete",
}


def _verb(request: Any) -> str:
    if request.action == kmock.action.UPDATE:
        return "patch" if str(request.method).upper().endswith("PATCH") else "update"
    return VERBS[request.action]


def _parse(path: str) -> tuple[str, str] | None:
    """(API group, resource[/subresource]) of a resource URL; None for discovery URLs."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    elif rest[0] == "namespaces":
        return "", "namespaces"
    return group, "/".join([rest[0], *rest[2:3]])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_every_request_the_operator_makes_is_in_the_rbac_table(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    await k8s.post(
        cr_url("schemaversions"),
        json={
            "apiVersion": "analytics.gameplay.dev/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {"name": "v1"},
            "spec": {
                "version": "1.0.0",
                "schemaFrom": {"configMapKeyRef": {"name": "s", "key": "k"}},
            },
        },
    )
    await k8s.post(
        cr_url("samplingpolicies"),
        json={
            "apiVersion": "analytics.gameplay.dev/v1alpha1",
            "kind": "SamplingPolicy",
            "metadata": {"name": "live"},
            "spec": {},
        },
    )
    body = pipeline(nats_url, samplingPolicyRef={"name": "live"}, gateway={"autoscaling": {}})
    await k8s.post(cr_url("analyticspipelines"), json=body)
    await until(
        lambda: k8s.get_obj("autoscaling/v2/horizontalpodautoscalers", "default", "p1-gateway")
    )
    await k8s.delete("/api/v1/namespaces/default/services/p1-gateway")
    await until(lambda: k8s.get_obj("v1/services", "default", "p1-gateway"), within=15)
    # Back to fixed replicas: the HPA would fight them, so it is pruned; an aggregator scaled
    # to zero has no PDB to keep.
    await k8s.patch(
        cr_url("analyticspipelines", "p1"),
        json={
            "spec": {"gateway": {"autoscaling": None, "replicas": 2}, "aggregator": {"replicas": 0}}
        },
        headers={"Content-Type": "application/merge-patch+json"},
    )
    await until(
        lambda: (
            k8s.get_obj("autoscaling/v2/horizontalpodautoscalers", "default", "p1-gateway") is None
            and k8s.get_obj("policy/v1/poddisruptionbudgets", "default", "p1-aggregator") is None
        ),
        within=30,
    )
    ours = {cr_url(p) for p in ("schemaversions", "samplingpolicies", "analyticspipelines")}
    ours.add(cr_url("analyticspipelines", "p1"))
    ours.add("/api/v1/namespaces/default/services/p1-gateway")
    denied, seen = set(), set()
    for request in list(k8s):
        parsed = _parse(request.url.path)
        if parsed is None or request.url.path in ours:
            continue  # discovery (no RBAC needed), or the test's own writes
        group, resource = parsed
        verb = _verb(request)
        seen.add(f"{verb} {group or 'core'}/{resource}")
        if not rbac.allows(group, resource, verb):
            denied.add(f"{verb} {group or 'core'}/{resource}")
    assert denied == set()
    assert {  # the check saw the operator's real traffic, kopf's included
        "watch apps/deployments",
        "create apps/deployments",
        "create autoscaling/horizontalpodautoscalers",
        "delete autoscaling/horizontalpodautoscalers",
        "delete policy/poddisruptionbudgets",
        "create core/services",
        "get core/configmaps",
        "patch analytics.gameplay.dev/analyticspipelines/status",
        "patch analytics.gameplay.dev/schemaversions/status",
        "patch analytics.gameplay.dev/samplingpolicies/status",
    } <= seen, sorted(seen)


def test_rbac_table_grants_nothing_destructive_or_wildcard() -> None:
    prunable = {"poddisruptionbudgets", "horizontalpodautoscalers"}
    prunable |= {"servicemonitors", "prometheusrules", "cronjobs"}  # the daily insights job
    prunable |= {"networkpolicies"}
    for rule in rbac.REQUIRED_RULES:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
        if "delete" in rule["verbs"]:  # only what pruning removes
            assert set(rule["resources"]) <= prunable, rule
    assert rbac.allows("", "secrets", "get") and not rbac.allows("", "secrets", "list")


async def test_unreachable_prometheus_keeps_the_rate_and_degrades(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    body = pipeline(nats_url, monitoring={"prometheusUrl": url, "loadSignalIntervalSeconds": 5})
    await k8s.post(cr_url("analyticspipelines"), json=body)
    degraded = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p1"), "Degraded").get("status") == "True"
            and condition(k8s.get_obj(AP, "default", "p1"), "Degraded")
        )
    )
    assert degraded["reason"] == "LoadSignalsUnavailable"
    assert url in degraded["message"] and "keeping heartbeat sampling at 0.1" in degraded["message"]


@pytest.fixture
async def fake_prometheus() -> AsyncIterator[tuple[str, dict[str, float]]]:
    """An HTTP endpoint answering /api/v1/query like Prometheus does (the API's JSON shape)."""
    answers: dict[str, float] = {}

    async def handle(request: web.Request) -> web.Response:
        query = request.query["query"]
        value = next((v for k, v in answers.items() if k in query), None)
        result = [] if value is None else [{"metric": {}, "value": [1.0, str(value)]}]
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/query", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", answers
    await runner.cleanup()


async def test_high_gateway_cpu_halves_the_heartbeat_rate_in_kv(
    k8s: Emulator, operator: object, nats_url: str, fake_prometheus: tuple[str, dict[str, float]]
) -> None:
    url, answers = fake_prometheus
    answers.update(
        {
            "process_cpu_seconds_total": 0.9,
            "analytics_queue_depth": 0.1,
            "analytics_players_in_combat": 0.2,
        }
    )
    body = pipeline(nats_url, monitoring={"prometheusUrl": url, "loadSignalIntervalSeconds": 5})
    await k8s.post(cr_url("analyticspipelines"), json=body)
    heartbeat = await until(
        lambda: (k8s.get_obj(AP, "default", "p1").get("status") or {}).get("heartbeat")
    )
    assert heartbeat["rate"] == 0.05
    assert "gateway CPU 90% is over the 65% target" in heartbeat["reason"]

    async def kv_tick_rate() -> float:
        wire = await natsconfig.read_config(nats_url, messages.KV_SAMPLING_KEY, bucket=P1_BUCKET)
        return float(
            json.loads(wire or b"{}").get("events", {}).get("client_tick", {}).get("rate", -1)
        )

    async with asyncio.timeout(10):
        while await kv_tick_rate() != 0.05:  # noqa: ASYNC110 - polling NATS KV
            await asyncio.sleep(0.1)
    assert condition(k8s.get_obj(AP, "default", "p1"), "Degraded").get("status") != "True"


async def test_query_parses_vectors_scalars_and_empty_results(
    fake_prometheus: tuple[str, dict[str, float]],
) -> None:
    import aiohttp

    url, answers = fake_prometheus
    answers["up"] = 0.5
    async with aiohttp.ClientSession() as session:
        assert await loadsignals.query(session, url, "up", timeout_s=2) == 0.5
        assert await loadsignals.query(session, url, "nothing", timeout_s=2) is None
        with pytest.raises(loadsignals.PrometheusUnavailable, match="did not answer"):
            await loadsignals.query(session, f"http://127.0.0.1:{_free_port()}", "up", timeout_s=2)


def test_signal_queries_are_scoped_to_the_pipeline() -> None:
    spec = AnalyticsPipelineSpec.model_validate(
        {"gateway": {"resources": {"limits": {"cpu": "500m"}}}}
    )
    queries = loadsignals.signal_queries(Pipeline("p", "games", spec))
    assert queries["gatewayCpu"] == (
        'avg(rate(process_cpu_seconds_total{namespace="games",job="p-gateway"}[1m])) / 0.5'
    )
    assert "/ analytics_queue_capacity{" in queries["queueFill"]  # the gateway's own bound
    assert 'namespace="games"' in queries["combatLoad"]
