"""Two operator replicas on the emulator with kopf peering: one is active, the other stands by."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml

from gameplay_analytics.operator.runner import run_operator
from tests.operator.conftest import cr_url, until
from tests.operator.emulator import Emulator, declare_crd
from tests.operator.test_operator import AP, pipeline

PEERING_CRDS = (
    Path(__file__).resolve().parents[2] / "helm/gameplay-analytics/crds/kopf-peering.yaml"
)
PEERINGS = "kopf.dev/v1/kopfpeerings"


async def test_two_replicas_elect_one_active_and_it_reconciles(
    k8s: Emulator, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kopf._core.engines.peering")
    for crd in yaml.safe_load_all(PEERING_CRDS.read_text()):
        declare_crd(k8s, crd)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "ha"}}
    response = await k8s.post("/apis/kopf.dev/v1/namespaces/default/kopfpeerings", json=peering)
    assert response.status in (200, 201)
    ready = [asyncio.Event(), asyncio.Event()]
    replicas = [
        asyncio.create_task(
            run_operator(
                namespace="default",
                resync_seconds=1.0,
                peering="ha",
                liveness_endpoint=None,
                ready_flag=flag,
            )
        )
        for flag in ready
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in ready)), 30)
        peers = await until(
            lambda: (
                len((k8s.get_obj(PEERINGS, "default", "ha") or {}).get("status") or {}) == 2
                and k8s.get_obj(PEERINGS, "default", "ha")["status"]
            ),
            within=30,
        )
        priorities = {peer["priority"] for peer in peers.values()}
        assert len(priorities) == 2, peers  # equal priorities would pause both replicas
        assert (await k8s.post(cr_url("analyticspipelines"), json=pipeline(nats_url))).status == 200
        status = await until(
            lambda: (
                (k8s.get_obj(AP, "default", "p1") or {}).get("status", {}).get("observedGeneration")
            ),
            within=30,
        )
        assert status == 1
        # Both start paused; the lower priority may resume before it sees the other, then
        # pauses in its favour: in the end exactly one replica is active.
        said = [r.getMessage() for r in caplog.records]
        resumed = sum(m.startswith("Resuming operations") for m in said)
        paused = sum(m.startswith("Pausing operations in favour of") for m in said)
        assert resumed - paused == 1, said
    finally:
        for task in replicas:
            task.cancel()
        await asyncio.wait(replicas, timeout=10)  # bounded: a stuck shutdown must not hang
