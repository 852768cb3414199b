"""The pipeline status decision (pure): rollout completeness, reconcile outcome, generation."""

from __future__ import annotations

from typing import Any

import pytest

from gameplay_analytics.operator import conditions
from gameplay_analytics.operator.status import Reconciled, pipeline_status


def deployment(
    replicas: int | None = 2,
    *,
    generation: int = 2,
    observed: int | None = 2,
    ready: int = 2,
    updated: int = 2,
    total: int | None = None,
    progress: tuple[str, str] | None = None,
    replica_failure: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "replicas": updated if total is None else total,
    }
    if observed is not None:
        status["observedGeneration"] = observed
    found = []
    if progress is not None:
        found.append({"type": "Progressing", "status": progress[0], "reason": progress[1]})
    if replica_failure:
        found.append(
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "q"}
        )
    status["conditions"] = found
    spec = {} if replicas is None else {"replicas": replicas}
    return {"metadata": {"generation": generation}, "spec": spec, "status": status}


COMPLETE = ("True", "NewReplicaSetAvailable")


@pytest.mark.parametrize(
    ("kwargs", "waiting"),
    [
        ({}, None),
        ({"progress": COMPLETE}, None),
        ({"replicas": None, "ready": 1, "updated": 1}, None),  # HPA-managed: API default 1
        ({"observed": 1}, "not observed the latest spec"),
        ({"observed": None}, "not observed the latest spec"),
        ({"updated": 1}, "1/2 replicas updated"),  # mid-rollout, old pods still ready
        ({"total": 3}, "1 old replica(s) pending termination"),
        ({"ready": 1}, "1/2 replicas ready"),
        ({"replicas": 0, "ready": 0, "updated": 0}, "scaled to 0 replicas"),
        ({"progress": ("False", "ProgressDeadlineExceeded")}, "ProgressDeadlineExceeded"),
        ({"replica_failure": True}, "rollout failed: FailedCreate: q"),
    ],
)
def test_rollout_is_complete_only_when_updated_ready_and_desired_agree(
    kwargs: dict[str, Any], waiting: str | None
) -> None:
    component = conditions.component_from_deployment("gateway", deployment(**kwargs))
    if waiting is None:
        assert component.ready and component.waiting_for is None
    else:
        assert not component.ready
        assert component.waiting_for is not None and waiting in component.waiting_for


def test_a_missing_deployment_is_not_ready() -> None:
    component = conditions.component_from_deployment("aggregator", None)
    assert not component.exists and component.waiting_for == "deployment not found"


def components(**overrides: dict[str, Any]) -> list[conditions.Component]:
    return [
        conditions.component_from_deployment(name, deployment(**overrides.get(name, {})))
        for name in ("gateway", "aggregator")
    ]


def by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_after_a_successful_reconcile_of_the_current_generation() -> None:
    status = pipeline_status({}, components(), generation=2, reconciled=Reconciled(2), at="t")
    ready = by_type(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "AllComponentsReady",
        2,
    )
    assert status["observedGeneration"] == 2 and status["reconcileError"] is None
    assert status["gateway"]["updatedReplicas"] == 2 and status["gateway"]["ready"] is True
    assert by_type(status)["Progressing"]["reason"] == "RolloutComplete"


def test_a_reconcile_error_persists_through_refreshes_until_a_reconcile_succeeds() -> None:
    failed = pipeline_status(
        {}, components(), generation=2, reconciled=Reconciled(2, "cannot connect to NATS")
    )
    assert failed["reconcileError"] == {
        "reason": "ReconcileFailed",
        "message": "cannot connect to NATS",
    }
    assert by_type(failed)["Ready"]["reason"] == "ReconcileFailed"
    previous = dict(failed)
    refreshed = pipeline_status(previous, components(), generation=2)  # a Deployment event
    assert by_type(refreshed)["Ready"]["reason"] == "ReconcileFailed"
    assert "observedGeneration" not in refreshed and "reconcileError" not in refreshed
    healed = pipeline_status(previous, components(), generation=2, reconciled=Reconciled(2))
    assert by_type(healed)["Ready"]["status"] == "True" and healed["reconcileError"] is None


def test_refresh_never_stamps_a_generation_it_did_not_reconcile() -> None:
    previous = {"observedGeneration": 1, "conditions": []}
    refreshed = pipeline_status(previous, components(), generation=2)
    assert "observedGeneration" not in refreshed
    ready = by_type(refreshed)["Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "False",
        "Reconciling",
        1,
    )


def test_mid_rollout_is_progressing_and_not_ready() -> None:
    status = pipeline_status(
        {}, components(gateway={"updated": 1}), generation=2, reconciled=Reconciled(2)
    )
    assert by_type(status)["Ready"]["reason"] == "ComponentsNotReady"
    assert "gateway: 1/2 replicas updated" in by_type(status)["Ready"]["message"]
    assert by_type(status)["Progressing"]["status"] == "True"


def test_a_failed_rollout_is_not_ready_and_not_progressing() -> None:
    failing = {"progress": ("False", "ProgressDeadlineExceeded")}
    status = pipeline_status(
        {}, components(aggregator=failing), generation=2, reconciled=Reconciled(2)
    )
    assert by_type(status)["Ready"]["reason"] == "RolloutFailed"
    assert by_type(status)["Progressing"] == {
        **by_type(status)["Progressing"],
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
    }


def test_an_aggregator_scaled_to_zero_is_stated_and_not_ready() -> None:
    zero = {"replicas": 0, "ready": 0, "updated": 0}
    status = pipeline_status(
        {}, components(aggregator=zero), generation=2, reconciled=Reconciled(2)
    )
    ready = by_type(status)["Ready"]
    assert ready["status"] == "False" and "aggregator: scaled to 0 replicas" in ready["message"]


def test_extra_fields_merge_into_the_component_entries() -> None:
    endpoint = "ws://p1-gateway.ns.svc:8765/ws"
    status = pipeline_status(
        {},
        components(),
        generation=2,
        reconciled=Reconciled(2),
        extra={"gateway": {"endpoint": endpoint}, "samplingVersion": "sha256:x"},
    )
    assert status["gateway"]["endpoint"] == endpoint and status["gateway"]["replicas"] == 2
    assert status["samplingVersion"] == "sha256:x"


def test_load_signals_degrade_without_unready() -> None:
    previous = {"observedGeneration": 2, "loadSignals": {"ok": False, "message": "down"}}
    status = pipeline_status(previous, components(), generation=2)
    assert by_type(status)["Degraded"]["status"] == "True"
    assert by_type(status)["Ready"]["status"] == "True"


def test_a_name_collision_keeps_its_reason_through_refreshes() -> None:
    refused = pipeline_status(
        {},
        components(),
        generation=1,
        reconciled=Reconciled(1, "NATS stream X belongs to a/p", reason="NatsNamesInUse"),
    )
    refreshed = pipeline_status({**refused, "observedGeneration": 1}, components(), generation=1)
    ready = by_type(refreshed)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NatsNamesInUse")
    assert "belongs to a/p" in ready["message"]
