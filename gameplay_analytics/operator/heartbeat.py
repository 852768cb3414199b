"""The adaptive heartbeat's controller step for one pipeline: read Prometheus, move the
rate, record it in status, republish the rules when it moved."""

from __future__ import annotations

from gameplay_analytics import sampling
from gameplay_analytics.operator import conditions, inforce, kube, loadsignals, policy
from gameplay_analytics.operator import metrics as operator_metrics
from gameplay_analytics.operator.reconcile import as_pipeline, reconcile_pipeline
from gameplay_analytics.operator.statuspatch import refresh_pipeline_status

__all__ = ["step_heartbeat"]


async def step_heartbeat(namespace: str, name: str) -> sampling.HeartbeatState | None:
    """One controller step for a pipeline: read Prometheus, move the heartbeat rate, publish.

    When Prometheus does not answer, the last rate stays and the pipeline is Degraded with
    the reason. Returns the new state, or None when the heartbeat class is pinned.
    """
    body = await kube.get(kind="AnalyticsPipeline", namespace=namespace, name=name)
    if body is None:
        return None
    pipeline = as_pipeline(body)
    policy_body, spec, rules = await inforce.policy_in_force(pipeline)
    config = policy.heartbeat_config(rules, spec.heartbeat if spec else None)
    if config is None:
        return None
    saved = (body.get("status") or {}).get("heartbeat") or {}
    start_rate = rules.classes[sampling.HEARTBEAT_CLASS].rate
    state = (
        sampling.HeartbeatState(
            rate=float(saved["rate"]),
            combat_high_since=saved.get("combatHighSince"),
            reason=str(saved.get("reason", "")),
        )
        if saved.get("rate") is not None
        else sampling.HeartbeatState.start(start_rate, config)
    )
    try:
        signals, figures = await loadsignals.read_signals(pipeline)
    except loadsignals.PrometheusUnavailable as exc:
        operator_metrics.LOAD_SIGNAL_FAILURES.labels(namespace, name).inc()
        report = {"ok": False, "message": f"{exc}; keeping heartbeat sampling at {state.rate:g}"}
        await refresh_pipeline_status(
            body, extra={"loadSignals": {**report, "at": conditions.now()}}
        )
        return state
    new = sampling.step(state, signals, config=config)
    operator_metrics.heartbeat_stepped(namespace, name, rate=new.rate, figures=figures)
    heartbeat = {"rate": new.rate, "reason": new.reason, "combatHighSince": new.combat_high_since}
    extra = {
        "heartbeat": heartbeat,
        "loadSignals": {"ok": True, "message": "", "at": conditions.now(), "figures": figures},
    }
    await kube.patch_status(kind="AnalyticsPipeline", namespace=namespace, name=name, status=extra)
    if policy_body is not None:
        await kube.patch_status(
            kind="SamplingPolicy",
            namespace=namespace,
            name=policy_body["metadata"]["name"],
            status={"heartbeat": heartbeat},
        )
    fresh = await kube.get(kind="AnalyticsPipeline", namespace=namespace, name=name)
    if fresh is not None:
        await reconcile_pipeline(fresh)  # publishes the rules with the new rate, if it moved
    return new
