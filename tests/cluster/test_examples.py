"""The full example as an SRE would apply it (their NATS with a .creds Secret, MinIO, the
Secrets the example names, the live-ops policy): on a one-node test NATS its R3, 50 GiB stream
is refused with the server's reason in the status; scaled to this server it reaches Ready."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import MERGE, apply, example, secret, until
from tests.cluster.kubelet import Kubelet
from tests.cluster.test_cluster_e2e import AP, diagnose, ready
from tests.cluster.test_nats_credentials import secured_nats
from tests.conftest import fresh_database
from tests.operator.emulator import Emulator

__all__ = ["secured_nats"]

pytestmark = pytest.mark.integration


@pytest.fixture
async def secured_kubelet(
    k8s: Emulator,
    cluster_operator: object,
    secured_nats: tuple[str, Path],
    tmp_path: Path,
) -> AsyncIterator[Kubelet]:
    url = secured_nats[0].removeprefix("nats://")
    async with Kubelet(k8s, dns={"nats.nats.svc:4222": url}, root=tmp_path / "k") as kubelet:
        yield kubelet


async def test_the_full_example_reaches_ready(
    k8s: Emulator,
    secured_kubelet: Kubelet,
    secured_nats: tuple[str, Path],
    postgres_dsn: str,
    s3_endpoint: str,
) -> None:
    url, creds = secured_nats
    namespace = f"prod-{uuid.uuid4().hex[:6]}"
    pipeline = copy.deepcopy(example("analyticspipeline-full.yaml"))
    spec = pipeline["spec"]
    spec.pop("image")  # the operator's own image; the kubelet runs this checkout anyway
    spec["nats"]["url"] = url  # the operator connects from here, pods through the DNS table
    spec["objectStore"]["endpoint"] = s3_endpoint
    spec["monitoring"]["prometheusUrl"] = "http://127.0.0.1:9"  # no Prometheus: Degraded only
    async with fresh_database(postgres_dsn, "full") as dsn:
        for body in (
            secret("analytics-nats", **{"operator.creds": creds.read_text()}),
            secret("analytics-postgres", dsn=dsn),
            secret("analytics-minio", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="t"),
            secret("game-auth", **{"jwt-hs256": "full-example-jwt"}),
            secret("analytics-salt", salt="full-example-salt"),
            example("samplingpolicy-full.yaml"),
            pipeline,
        ):
            await apply(k8s, body, namespace)
        name = pipeline["metadata"]["name"]

        def refused() -> dict[str, Any] | None:
            for c in ((k8s.get_obj(AP, namespace, name) or {}).get("status") or {}).get(
                "conditions"
            ) or ():
                if c["type"] == "Ready" and c["reason"] == "ReconcileFailed":
                    return dict(c)
            return None

        condition = await until(refused, what=lambda: diagnose(k8s, namespace, name))
        # R3 and a 50 GiB reservation do not fit a one-node test server: said in the status
        assert "insufficient storage resources" in condition["message"]
        url = f"/apis/{AP.rsplit('/', 1)[0]}/namespaces/{namespace}/analyticspipelines/{name}"
        one = {"spec": {"nats": {"streamReplicas": 1, "maxBytes": 1 << 30}}}
        assert (await k8s.patch(url, json=one, headers=MERGE)).status == 200
        await until(
            lambda: ready(k8s, namespace, name),
            within=150,
            what=lambda: diagnose(k8s, namespace, name),
        )
        aggregators = secured_kubelet.pods[namespace, f"{name}-aggregator"]
        assert len(aggregators) == 3 and all(p.ready for p in aggregators)
