"""The cluster in a box: kmock's emulator, the real operator watching every namespace, and the
local kubelet (tests/cluster/kubelet.py) running what the operator deploys as processes, with
the session's real nats-server and Postgres and a moto S3 server. See docs/operations.md."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gameplay_analytics.local.services import free_port
from gameplay_analytics.operator.runner import run_operator
from tests.cluster.kubelet import Kubelet
from tests.operator.conftest import k8s
from tests.operator.emulator import Emulator

__all__ = ["k8s"]

ROOT = Path(__file__).resolve().parents[2]
GROUP = "analytics.gameplay.dev/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def cluster_operator(k8s: Emulator) -> AsyncIterator[asyncio.Task[None]]:
    """The operator through its production entry point, cluster-wide, standalone."""
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_operator(
            namespace=None, resync_seconds=1.0, peering=None, liveness_endpoint=None,
            ready_flag=ready, metrics_port=free_port(),
        )
    )  # fmt: skip
    await asyncio.wait_for(ready.wait(), 20)
    yield task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def kubelet(
    k8s: Emulator, cluster_operator: object, nats_url: str, s3_endpoint: str, tmp_path: Path
) -> AsyncIterator[Kubelet]:
    """Pods as processes. Cluster DNS: the examples' service names map to the real servers."""
    nats_local = nats_url.rsplit("@", 1)[-1].removeprefix("nats://")  # host:port
    dns = {"nats:4222": nats_local, "nats.nats.svc:4222": nats_local}
    async with Kubelet(k8s, dns=dns, root=tmp_path / "kubelet") as running:
        yield running


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "examples" / name).read_text()))


async def apply(k8s: Emulator, body: dict[str, Any], namespace: str) -> None:
    """`kubectl apply` of one object: create, or merge-patch when it exists."""
    api = body["apiVersion"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    plural = {"AnalyticsPipeline": "analyticspipelines", "SamplingPolicy": "samplingpolicies",
              "SchemaVersion": "schemaversions", "Secret": "secrets"}[body["kind"]]  # fmt: skip
    url = f"{base}/namespaces/{namespace}/{plural}"
    body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
    response = await k8s.post(url, json=body)
    if response.status == 409:
        response = await k8s.patch(f"{url}/{body['metadata']['name']}", json=body, headers=MERGE)
    assert response.status in (200, 201), (response.status, await response.text())


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


async def until(check: Any, *, within: float = 90.0, what: Any = "") -> Any:
    """Poll `check()` (sync or async) until truthy; its value. `what` (a text, or a callable
    giving one at the time of failure) says what was awaited."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.2)
