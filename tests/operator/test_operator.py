"""The operator on kopf + kmock's emulator, with the real nats-server for the KV bucket."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from gameplay_analytics.contract import messages
from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.contract.registry import released_schemas
from gameplay_analytics.operator import natsconfig
from tests.operator.conftest import condition, cr_url, until
from tests.operator.emulator import Emulator

AP, SP, ASV = (
    "analytics.gameplay.dev/v1alpha1/analyticspipelines",
    "analytics.gameplay.dev/v1alpha1/samplingpolicies",
    "analytics.gameplay.dev/v1alpha1/schemaversions",
)
MERGE = {"Content-Type": "application/merge-patch+json"}
P1_BUCKET = PipelineNames.for_pipeline("default", "p1").config_bucket
OWNED = [
    ("v1/configmaps", "p1-config"),
    ("v1/configmaps", "p1-sampling"),
    ("apps/v1/deployments", "p1-gateway"),
    ("apps/v1/deployments", "p1-aggregator"),
    ("v1/services", "p1-gateway"),
    ("v1/services", "p1-aggregator"),
    ("policy/v1/poddisruptionbudgets", "p1-gateway"),
    ("policy/v1/poddisruptionbudgets", "p1-aggregator"),
]


def pipeline(nats_url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "analytics.gameplay.dev/v1alpha1",
        "kind": "AnalyticsPipeline",
        "metadata": {"name": "p1"},
        "spec": {"nats": {"url": nats_url}, **spec},
    }


async def make_ready(k8s: Emulator, name: str, replicas: int) -> None:
    """What the Deployment controller would do once the pods pass their readiness probes."""
    url = f"/apis/apps/v1/namespaces/default/deployments/{name}/status"
    status = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
    }
    response = await k8s.patch(url, json={"status": status}, headers=MERGE)
    assert response.status == 200


async def test_pipeline_goes_progressing_then_ready_with_owned_objects(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    assert (await k8s.post(cr_url("analyticspipelines"), json=pipeline(nats_url))).status == 200
    await until(lambda: all(k8s.get_obj(r, "default", n) for r, n in OWNED))
    ready = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p1"))["reason"] == "ComponentsNotReady"
            and condition(k8s.get_obj(AP, "default", "p1"))
        )
    )
    progressing = condition(k8s.get_obj(AP, "default", "p1"), "Progressing")
    assert progressing["status"] == "True" and progressing["reason"] == "RollingOut"
    # No Deployment controller runs on the emulator: nothing has observed the Deployments yet.
    assert ready["status"] == "False" and "gateway: the deployment controller" in ready["message"]

    owner = k8s.get_obj(AP, "default", "p1")
    for resource, name in OWNED:
        obj = k8s.get_obj(resource, "default", name)
        assert obj is not None, (resource, name)
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref["uid"] == owner["metadata"]["uid"] and ref["controller"] is True
    assert k8s.get_obj("autoscaling/v2/horizontalpodautoscalers", "default", "p1-gateway") is None

    await make_ready(k8s, "p1-gateway", 2)
    await make_ready(k8s, "p1-aggregator", 1)
    ready = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p1"))["status"] == "True"
            and condition(k8s.get_obj(AP, "default", "p1"))
        )
    )
    assert ready["reason"] == "AllComponentsReady"
    status = k8s.get_obj(AP, "default", "p1")["status"]
    assert condition(k8s.get_obj(AP, "default", "p1"), "Progressing")["status"] == "False"
    assert condition(k8s.get_obj(AP, "default", "p1"), "Degraded")["status"] == "False"
    assert status["observedGeneration"] == 1
    assert status["gateway"] == {
        "replicas": 2,
        "readyReplicas": 2,
        "updatedReplicas": 2,
        "ready": True,
        "endpoint": "ws://p1-gateway.default.svc:8765/ws",
    }
    version = await until(lambda: k8s.get_obj(AP, "default", "p1")["status"].get("samplingVersion"))
    assert version.startswith("sha256:")

    # The KV bucket on the real nats-server holds what the gateways hot-reload.
    wire = await natsconfig.read_config(nats_url, messages.KV_SAMPLING_KEY, bucket=P1_BUCKET)
    assert wire is not None and json.loads(wire)["events"]["client_tick"]["rate"] == 0.1
    schemas = json.loads(
        await natsconfig.read_config(nats_url, messages.KV_SCHEMAS_KEY, bucket=P1_BUCKET) or b"{}"
    )
    assert schemas["accepted"] == list(released_schemas())


async def test_deleted_or_edited_objects_come_back(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    await k8s.post(cr_url("analyticspipelines"), json=pipeline(nats_url))
    await until(lambda: k8s.get_obj("apps/v1/deployments", "default", "p1-aggregator"))
    await until(lambda: k8s.get_obj("v1/services", "default", "p1-gateway"))  # what we delete
    assert (await k8s.delete("/api/v1/namespaces/default/services/p1-gateway")).status == 200
    await k8s.patch(
        "/apis/apps/v1/namespaces/default/deployments/p1-aggregator",
        json={"spec": {"replicas": 7}},
        headers=MERGE,
    )
    assert k8s.get_obj("v1/services", "default", "p1-gateway") is None
    service = await until(lambda: k8s.get_obj("v1/services", "default", "p1-gateway"), within=15)
    assert service["spec"]["ports"][0]["port"] == 8765
    await until(
        lambda: (
            k8s.get_obj("apps/v1/deployments", "default", "p1-aggregator")["spec"]["replicas"] == 1
        ),
        within=15,
    )


async def test_policy_edit_reaches_the_kv_bucket_and_invalid_rules_are_refused(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    policy = {
        "apiVersion": "analytics.gameplay.dev/v1alpha1",
        "kind": "SamplingPolicy",
        "metadata": {"name": "live"},
        "spec": {"rules": {"classes": {"social": {"rate": 0.25}}}},
    }
    await k8s.post(cr_url("samplingpolicies"), json=policy)
    body = pipeline(nats_url, samplingPolicyRef={"name": "live"})
    await k8s.post(cr_url("analyticspipelines"), json=body)

    async def kv_rate(event: str) -> float:
        wire = await natsconfig.read_config(nats_url, messages.KV_SAMPLING_KEY, bucket=P1_BUCKET)
        return float(json.loads(wire or b"{}").get("events", {}).get(event, {}).get("rate", -1))

    async def eventually_rate(event: str, rate: float) -> None:
        async with asyncio.timeout(10):
            while await kv_rate(event) != rate:  # noqa: ASYNC110 - polling NATS KV
                await asyncio.sleep(0.1)

    await eventually_rate("party_join", 0.25)
    first = await until(
        lambda: (k8s.get_obj(SP, "default", "live").get("status") or {}).get("samplingVersion")
    )

    await k8s.patch(
        cr_url("samplingpolicies", "live"),
        json={"spec": {"rules": {"classes": {"social": {"rate": 0.75}}}}},
        headers=MERGE,
    )
    await eventually_rate("party_join", 0.75)
    second = await until(
        lambda: (
            (k8s.get_obj(SP, "default", "live")["status"].get("samplingVersion") != first)
            and k8s.get_obj(SP, "default", "live")["status"]["samplingVersion"]
        )
    )
    sampling_cm = k8s.get_obj("v1/configmaps", "default", "p1-sampling")
    assert sampling_cm["data"]["sampling-version"] == second
    assert condition(k8s.get_obj(SP, "default", "live"))["reason"] == "Applied"

    # An event the taxonomy does not know passes the CRD schema but not the sampling core.
    await k8s.patch(
        cr_url("samplingpolicies", "live"),
        json={
            "spec": {
                "rules": {
                    "classes": {"social": {"rate": 0.1}},
                    "events": {"lot_drop": {"rate": 1.0}},
                }
            }
        },
        headers=MERGE,
    )
    refused = await until(
        lambda: (
            condition(k8s.get_obj(SP, "default", "live"))["reason"] == "InvalidRules"
            and condition(k8s.get_obj(SP, "default", "live"))
        )
    )
    assert refused["status"] == "False"
    assert "unknown event 'lot_drop' (did you mean 'loot_drop'?)" in refused["message"]
    assert "last good rules stay in force" in refused["message"]
    await asyncio.sleep(1.5)  # a resync passes: the last good rules stay
    assert await kv_rate("party_join") == 0.75


async def test_breaking_schema_version_is_rejected_and_never_published(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    await k8s.post(cr_url("analyticspipelines"), json=pipeline(nats_url))
    base = released_schemas()["1.0.0"]
    compatible = json.loads(json.dumps(base))
    compatible["version"] = "1.1.0"
    compatible["definitions"]["loot_drop"]["properties"]["source"] = {"type": "string"}
    breaking = json.loads(json.dumps(base))
    breaking["version"] = "1.2.0"
    del breaking["definitions"]["engage_enemy"]["properties"]["enemy_id"]
    breaking["definitions"]["engage_enemy"]["required"] = ["tier"]

    def asv(name: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "analytics.gameplay.dev/v1alpha1",
            "kind": "SchemaVersion",
            "metadata": {"name": name},
            "spec": {"version": doc["version"], "schema": doc},
        }

    await k8s.post(cr_url("schemaversions"), json=asv("v1-1-0", compatible))
    accepted = await until(
        lambda: (k8s.get_obj(ASV, "default", "v1-1-0").get("status") or {}).get("phase")
    )
    assert accepted == "Accepted"
    await k8s.post(cr_url("schemaversions"), json=asv("v1-2-0", breaking))
    rejected = await until(
        lambda: (k8s.get_obj(ASV, "default", "v1-2-0").get("status") or {}).get("phase")
    )
    assert rejected == "Rejected"
    ready = condition(k8s.get_obj(ASV, "default", "v1-2-0"))
    assert ready["status"] == "False" and ready["reason"] == "IncompatibleChange"
    assert "engage_enemy.props.enemy_id: field removed" in ready["message"]

    async def published() -> list[str]:
        raw = await natsconfig.read_config(nats_url, messages.KV_SCHEMAS_KEY, bucket=P1_BUCKET)
        return list(json.loads(raw or b"{}").get("accepted", []))

    async with asyncio.timeout(10):
        while await published() != ["1.0.0", "1.1.0"]:  # noqa: ASYNC110 - polling NATS KV
            await asyncio.sleep(0.1)


async def test_reconciles_are_counted_on_the_operators_metrics_port(
    k8s: Emulator, operator: object, nats_url: str, operator_metrics_port: int
) -> None:
    """The chart's metrics Service (port 9102) has something behind it: reconciles by kind and
    outcome, with their durations, next to the process metrics."""
    assert (await k8s.post(cr_url("analyticspipelines"), json=pipeline(nats_url))).status == 200
    await until(lambda: condition(k8s.get_obj(AP, "default", "p1"), "Progressing"))
    url = f"http://127.0.0.1:{operator_metrics_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'analytics_operator_reconciles_total{kind="AnalyticsPipeline",result="ok"}' in text
    assert "analytics_operator_reconcile_seconds_bucket" in text
    assert "process_cpu_seconds_total" in text


async def test_nats_unreachable_stays_reconcile_failed_through_deployment_events(
    k8s: Emulator, operator: object
) -> None:
    from gameplay_analytics.local.services import free_port

    down = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    await k8s.post(cr_url("analyticspipelines"), json=pipeline(down))
    failed = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p1")).get("reason") == "ReconcileFailed"
            and k8s.get_obj(AP, "default", "p1")["status"]
        ),
        within=20,
    )
    # the cause, not an empty timeout: a refused connect is not retried until the deadline
    assert "cannot connect to NATS" in failed["reconcileError"]["message"]
    assert "no servers available" in failed["reconcileError"]["message"]
    # The Deployments complete their rollout: a refresh must not turn that into Ready.
    await make_ready(k8s, "p1-gateway", 2)
    await make_ready(k8s, "p1-aggregator", 1)
    await until(
        lambda: k8s.get_obj(AP, "default", "p1")["status"]["aggregator"]["ready"], within=10
    )
    for _ in range(10):
        ready = condition(k8s.get_obj(AP, "default", "p1"))
        assert (ready["status"], ready["reason"]) == ("False", "ReconcileFailed")
        await asyncio.sleep(0.1)
