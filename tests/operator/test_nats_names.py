"""Per-pipeline NATS names on one real nats-server: isolation, refused collisions, deletion."""

from __future__ import annotations

from typing import Any

import nats
from nats.js.errors import NotFoundError

from gameplay_analytics.contract.natsnames import PipelineNames
from tests.operator.conftest import condition, cr_url, until
from tests.operator.emulator import Emulator
from tests.operator.test_operator import AP

P1 = PipelineNames.for_pipeline("default", "p1")


def named(name: str, nats_url: str, **spec: Any) -> dict[str, Any]:
    nats_spec = {"url": nats_url, **spec.pop("nats", {})}
    return {
        "apiVersion": "analytics.gameplay.dev/v1alpha1",
        "kind": "AnalyticsPipeline",
        "metadata": {"name": name},
        "spec": {"nats": nats_spec, **spec},
    }


async def streams(nats_url: str) -> dict[str, list[str]]:
    nc = await nats.connect(nats_url)
    try:
        found = await nc.jetstream().streams_info()
        return {s.config.name: list(s.config.subjects or []) for s in found}
    finally:
        await nc.close()


async def test_two_pipelines_get_their_own_names_and_a_colliding_one_is_refused(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    await k8s.post(cr_url("analyticspipelines"), json=named("p1", nats_url))
    await k8s.post(cr_url("analyticspipelines"), json=named("p2", nats_url))
    for name in ("p1", "p2"):
        await until(
            lambda n=name: (k8s.get_obj(AP, "default", n) or {}).get("status", {}).get("nats")
        )
    status = k8s.get_obj(AP, "default", "p1")["status"]
    assert status["nats"] == {
        "stream": P1.stream,
        "eventsSubject": P1.events_subject,
        "dlqSubject": P1.dlq_subject,
        "configBucket": P1.config_bucket,
        "consumer": "aggregator",
    }
    assert status["warmStore"].startswith("off: no objectStore or warmVolume")
    p2 = PipelineNames.for_pipeline("default", "p2")
    found = await streams(nats_url)
    assert found[P1.stream] == P1.subjects() and found[p2.stream] == p2.subjects()
    assert f"KV_{P1.config_bucket}" in found and f"KV_{p2.config_bucket}" in found

    # p3 asks for p1's stream: refused in its status, p1's stream untouched.
    await k8s.post(
        cr_url("analyticspipelines"), json=named("p3", nats_url, nats={"stream": P1.stream})
    )
    ready = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p3")).get("reason") == "NatsNamesInUse"
            and condition(k8s.get_obj(AP, "default", "p3"))
        ),
        within=30,
    )
    assert ready["status"] == "False"
    assert f"NATS stream {P1.stream} belongs to default/p1" in ready["message"]
    assert (await streams(nats_url))[P1.stream] == P1.subjects()
    # p4 asks for p1's subjects under its own stream name: NATS refuses the overlap.
    await k8s.post(
        cr_url("analyticspipelines"),
        json=named("p4", nats_url, nats={"eventsSubject": P1.events_subject}),
    )
    ready = await until(
        lambda: (
            condition(k8s.get_obj(AP, "default", "p4")).get("reason") == "NatsNamesInUse"
            and condition(k8s.get_obj(AP, "default", "p4"))
        ),
        within=30,
    )
    assert "overlap another stream" in ready["message"]


async def test_deletion_policy_delete_removes_the_stream_and_bucket_retain_keeps_them(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    await k8s.post(
        cr_url("analyticspipelines"), json=named("p1", nats_url, deletionPolicy="Delete")
    )
    await k8s.post(cr_url("analyticspipelines"), json=named("p2", nats_url))
    for name in ("p1", "p2"):
        await until(
            lambda n=name: (k8s.get_obj(AP, "default", n) or {}).get("status", {}).get("nats"),
            within=30,
        )
    # kopf's finalizer (its resync timer puts it on every pipeline) holds p1 until NATS is done.
    await until(lambda: k8s.get_obj(AP, "default", "p1")["metadata"].get("finalizers"), within=30)
    p2 = PipelineNames.for_pipeline("default", "p2")
    assert {P1.stream, p2.stream} <= set(await streams(nats_url))

    for name in ("p1", "p2"):
        assert (await k8s.delete(cr_url("analyticspipelines", name))).status == 200
    await until(lambda: k8s.get_obj(AP, "default", "p1") is None, within=30)
    await until(lambda: k8s.get_obj(AP, "default", "p2") is None, within=30)
    found = await streams(nats_url)
    assert P1.stream not in found and f"KV_{P1.config_bucket}" not in found
    assert p2.stream in found and f"KV_{p2.config_bucket}" in found  # Retain (the default)
    nc = await nats.connect(nats_url)
    try:
        try:
            await nc.jetstream().consumer_info(P1.stream, P1.consumer)
            raise AssertionError("the consumer outlived its stream")
        except NotFoundError:
            pass
    finally:
        await nc.close()
