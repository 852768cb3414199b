"""End to end on the cluster in a box: the examples applied as an SRE would, the pipeline's
Deployments running as processes, the Python SDK talking to the deployed gateway."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import asyncpg
import nats
import pytest

from gameplay_analytics.contract.natsnames import KV_BREAKER_KEY, PipelineNames
from gameplay_analytics.runtime.gateway import issue_token
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from tests.cluster.conftest import GROUP, MERGE, apply, example, secret, until
from tests.cluster.kubelet import Kubelet
from tests.conftest import fresh_database
from tests.integration.test_gateway_e2e import play
from tests.operator.emulator import Emulator

pytestmark = pytest.mark.integration

AP = f"{GROUP}/analyticspipelines"
JWT = "cluster-jwt-secret"


def ready(k8s: Emulator, namespace: str, name: str) -> dict[str, Any] | None:
    obj = k8s.get_obj(AP, namespace, name) or {}
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == "Ready" and c["status"] == "True":
            return obj
    return None


def why_not(k8s: Emulator, namespace: str, name: str) -> str:
    obj = k8s.get_obj(AP, namespace, name) or {}
    return json.dumps((obj.get("status") or {}).get("conditions"))


async def deploy(
    k8s: Emulator, *, namespace: str, dsn: str, nats_url: str, s3: str, **spec: Any
) -> str:
    """The minimal example with what an SRE brings: NATS, Postgres, S3 and the Secrets."""
    for body in (
        secret("analytics-postgres", dsn=dsn),
        secret("analytics-jwt", secret=JWT),
        secret("analytics-salt", salt="cluster-salt"),
        secret("analytics-object-store", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="t"),
    ):
        await apply(k8s, body, namespace)
    await apply(k8s, example("samplingpolicy-minimal.yaml"), namespace)
    pipeline = copy.deepcopy(example("analyticspipeline-minimal.yaml"))
    pipeline["spec"] = {
        "nats": {"url": nats_url},
        "objectStore": {"endpoint": s3, "bucket": f"wh-{namespace}"},
        "gateway": {"replicas": 1},
        "samplingPolicyRef": {"name": "default"},
        **spec,
    }
    await apply(k8s, pipeline, namespace)
    name = str(pipeline["metadata"]["name"])
    await until(lambda: ready(k8s, namespace, name), what=lambda: diagnose(k8s, namespace, name))
    return name


def diagnose(k8s: Emulator, namespace: str, name: str) -> str:
    """The pipeline's conditions and each pod's last log lines, for a failed wait."""
    from tests.cluster import kubelet as kubelet_module

    lines = [f"{namespace}/{name} not Ready: {why_not(k8s, namespace, name)}"]
    for pod in kubelet_module.RUNNING.get(namespace, []):
        lines.append(f"--- pod {pod.name} ready={pod.ready} restarts={pod.restarts}\n{pod.tail()}")
    return "\n".join(lines)


async def events_stored(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (client_guid, seq)) AS d FROM analytics_events"
        )
        return int(row["n"]), int(row["d"])
    finally:
        await conn.close()


def sdk(port: int) -> tuple[AnalyticsClient, WebSocketConnector]:
    player = str(uuid.uuid4())
    client = AnalyticsClient(
        player_uuid=player, client_guid=uuid.uuid4(), token=issue_token(player, secret=JWT)
    )
    return client, WebSocketConnector(client, f"ws://127.0.0.1:{port}/ws")


async def test_a_pipeline_as_deployed_stores_reloads_rolls_scales_and_goes(
    k8s: Emulator, kubelet: Kubelet, nats_url: str, postgres_dsn: str, s3_endpoint: str
) -> None:
    namespace = f"games-{uuid.uuid4().hex[:6]}"
    async with fresh_database(postgres_dsn, "cluster") as dsn:
        name = await deploy(k8s, namespace=namespace, dsn=dsn, nats_url=nats_url, s3=s3_endpoint)
        (port,) = kubelet.endpoints(namespace, f"{name}-gateway", "ws")

        # The SDK through the deployed gateway: every event stored exactly once.
        client, connector = sdk(port)
        connector.start()
        play(client, 20)
        await until(lambda: client.stats.events_acked == client.stats.buffered > 0, what="acks")
        await until(lambda: _stored_all(dsn, client.stats.buffered), what="rows in Postgres")
        assert await events_stored(dsn) == (client.stats.buffered, client.stats.buffered)

        # A SamplingPolicy edit (rules and breaker) reaches the connected SDK: no reconnect.
        session, before = client.session_id, client.sampling_version
        policy = {"spec": {"rules": {"events": {"xp_gain": {"rate": 0.4}}},
                           "breaker": {"threshold": 0.6, "recoverBelow": 0.3}}}  # fmt: skip
        url = f"/apis/{GROUP}/namespaces/{namespace}/samplingpolicies/default"
        assert (await k8s.patch(url, json=policy, headers=MERGE)).status == 200
        await until(lambda: client.sampling_version != before, what="new rules at the SDK")
        assert client.session_id == session
        bucket = PipelineNames.for_pipeline(namespace, name).config_bucket
        breaker = json.loads(await _kv(nats_url, bucket, KV_BREAKER_KEY))
        assert breaker["threshold"] == 0.6
        await connector.stop(flush_timeout_s=5)

        # A rotated Secret rolls the pods that read it (the gateway's JWT secret).
        started = kubelet.started
        gateway_pods = [p.name for p in kubelet.pods[namespace, f"{name}-gateway"]]
        await apply(k8s, secret("analytics-jwt", secret=JWT + "-rotated"), namespace)
        await until(
            lambda: (
                kubelet.started > started
                and [p.name for p in kubelet.pods[namespace, f"{name}-gateway"]] != gateway_pods
            ),
            what="gateway pods rolled",
        )
        await until(
            lambda: ready(k8s, namespace, name), what=lambda: diagnose(k8s, namespace, name)
        )

        # Scale the gateway to two replicas: two ready endpoints, the pipeline Ready again.
        url = f"/apis/{GROUP}/namespaces/{namespace}/analyticspipelines/{name}"
        scale = {"spec": {"gateway": {"replicas": 2}}}
        assert (await k8s.patch(url, json=scale, headers=MERGE)).status == 200
        await until(
            lambda: len(kubelet.endpoints(namespace, f"{name}-gateway", "ws")) == 2,
            what="two gateway endpoints",
        )
        await until(lambda: ready(k8s, namespace, name), what="Ready after scaling")

        # Deleting the pipeline stops its processes (owner references, the garbage collector).
        assert (await k8s.delete(url)).status in (200, 202)
        await until(lambda: not any(ns == namespace for ns, _ in kubelet.pods), what="pods gone")


async def test_two_pipelines_on_one_nats_stay_isolated(
    k8s: Emulator, kubelet: Kubelet, nats_url: str, postgres_dsn: str, s3_endpoint: str
) -> None:
    spaces = [f"team-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    async with (
        fresh_database(postgres_dsn, "cluster_a") as dsn_a,
        fresh_database(postgres_dsn, "cluster_b") as dsn_b,
    ):
        for namespace, dsn in zip(spaces, (dsn_a, dsn_b), strict=True):
            await deploy(k8s, namespace=namespace, dsn=dsn, nats_url=nats_url, s3=s3_endpoint)
        (port_a,) = kubelet.endpoints(spaces[0], "minimal-gateway", "ws")
        client, connector = sdk(port_a)
        connector.start()
        play(client, 10)
        await until(lambda: _stored_all(dsn_a, client.stats.buffered), what="rows in A")
        await connector.stop(flush_timeout_s=5)
        assert await events_stored(dsn_a) == (client.stats.buffered, client.stats.buffered)
        assert await events_stored(dsn_b) == (0, 0)  # B's aggregator never saw A's events


async def _stored_all(dsn: str, expected: int) -> bool:
    return (await events_stored(dsn))[0] >= expected


async def _kv(nats_url: str, bucket: str, key: str) -> bytes:
    nc = await nats.connect(nats_url)
    try:
        entry = await (await nc.jetstream().key_value(bucket)).get(key)
        return entry.value or b""
    finally:
        await nc.close()
