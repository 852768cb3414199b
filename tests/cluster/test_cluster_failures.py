"""What the pipeline's status says when its processes cannot run: a crash loop is a failed
rollout with the pod's last words, an unreachable object store a not-ready aggregator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.cluster.conftest import apply, secret, until
from tests.cluster.kubelet import Kubelet, Pod
from tests.cluster.test_cluster_e2e import AP, JWT, deploy, why_not
from tests.conftest import fresh_database
from tests.operator.emulator import Emulator

pytestmark = pytest.mark.integration


def ready_condition(k8s: Emulator, namespace: str, name: str) -> dict[str, Any]:
    obj = k8s.get_obj(AP, namespace, name) or {}
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == "Ready":
            return dict(c)
    return {}


async def test_a_crash_looping_gateway_is_a_failed_rollout_with_its_reason(
    k8s: Emulator, kubelet: Kubelet, nats_url: str, postgres_dsn: str, s3_endpoint: str
) -> None:
    namespace = f"crash-{uuid.uuid4().hex[:6]}"
    async with fresh_database(postgres_dsn, "crash") as dsn:
        name = await deploy(k8s, namespace=namespace, dsn=dsn, nats_url=nats_url, s3=s3_endpoint)
        # An empty JWT secret: the gateway refuses to start (exit 2), again and again.
        await apply(k8s, secret("analytics-jwt", secret=""), namespace)

        def failed() -> dict[str, Any] | None:
            c = ready_condition(k8s, namespace, name)
            return c if c.get("status") == "False" and "CrashLoopBackOff" in c["message"] else None

        condition = await until(failed, within=120, what=lambda: why_not(k8s, namespace, name))
        assert condition["reason"] == "RolloutFailed"
        assert "jwt_secret" in condition["message"]  # the pod's own words reach the status
        await apply(k8s, secret("analytics-jwt", secret=JWT), namespace)  # and it recovers
        await until(
            lambda: ready_condition(k8s, namespace, name).get("status") == "True",
            within=120,
            what=lambda: why_not(k8s, namespace, name),
        )


async def test_an_unreachable_object_store_keeps_the_pipeline_not_ready_with_a_reason(
    k8s: Emulator, kubelet: Kubelet, nats_url: str, postgres_dsn: str, s3_endpoint: str
) -> None:
    namespace = f"nos3-{uuid.uuid4().hex[:6]}"
    async with fresh_database(postgres_dsn, "nos3") as dsn:
        name = await deploy(k8s, namespace=namespace, dsn=dsn, nats_url=nats_url, s3=s3_endpoint)
        url = f"/apis/{AP.rsplit('/', 1)[0]}/namespaces/{namespace}/analyticspipelines/{name}"
        dead = {"spec": {"objectStore": {"endpoint": "http://127.0.0.1:9"}}}  # nothing there
        headers = {"Content-Type": "application/merge-patch+json"}
        assert (await k8s.patch(url, json=dead, headers=headers)).status == 200

        def aggregator_says_why() -> Pod | None:
            pods = kubelet.pods.get((namespace, f"{name}-aggregator")) or []
            return next((p for p in pods if "warm store" in _readyz(p)), None)

        await until(aggregator_says_why, within=120, what="the aggregator's /readyz reason")
        condition = await until(
            lambda: (
                (c := ready_condition(k8s, namespace, name)).get("status") == "False"
                and "aggregator" in c["message"]
                and c
            ),
            what=lambda: why_not(k8s, namespace, name),
        )
        assert condition["reason"] == "ComponentsNotReady"
        pods = kubelet.pods[namespace, f"{name}-aggregator"]
        assert all(p.restarts == 0 for p in pods)  # not ready, never a crash loop


def _readyz(pod: Pod) -> str:
    import urllib.request

    try:
        port = pod.ports["metrics"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return str(reply.read().decode())
    except OSError as err:  # 503 raises HTTPError, which carries the body
        body = getattr(err, "read", None)
        return body().decode() if body else ""
