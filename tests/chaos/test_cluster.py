"""Faults under load on the production topology: JetStream as three clustered nats-servers,
the stream at R3, every client given all three URLs.

Same harness and invariant as test_chaos.py (nothing acked lost, nothing stored twice), plus
the recovery times of tests/chaos/recovery.py. docs/runbooks/chaos.md has the figures.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.services import NatsCluster
from gameplay_analytics.local.stack import LocalStack
from gameplay_analytics.runtime import privacy_scan
from tests.chaos.recovery import Recovery, stream_peers
from tests.chaos.support import Scenario, assert_exact, ready

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

_RECOVERY_BOUND_S = 30.0  # generous: a missing figure is reported as n/a, not waited for
_QUORUM_LOSS_S = 4.0  # leader and a follower both down (1 of 3 left: no quorum) this long
_FAULT_RATE = "0.1"  # chance per fault point (three per batch) of the commit hook raising

_players: set[str] = set()  # raw player UUIDs of every scenario here, for the privacy scan


async def test_kill_stream_leader_then_a_follower_then_restart_both(
    cluster_stack: LocalStack, tmp_path: Path, chaos_results: Path
) -> None:
    """kill -9 the R3 stream's leader (a new one is elected: writes resume), then a follower
    (one node of three left: no quorum, writes stop), then restart both on their data."""
    stack = cluster_stack
    cluster = stack.nats
    assert isinstance(cluster, NatsCluster)
    killed: list[str] = []

    async def fault() -> float:
        await asyncio.sleep(5)
        leader, _ = await stream_peers(stack.nats_url_as(natsauth.ADMIN))
        cluster.node(leader).kill()
        killed.append(leader)
        probe = Recovery(stack)
        await probe.mark()
        scenario.recovery["leader_kill.first_ack"] = await probe.first_ack(_RECOVERY_BOUND_S)
        scenario.recovery["leader_kill.caught_up"] = await probe.caught_up(_RECOVERY_BOUND_S)
        new_leader, followers = await stream_peers(stack.nats_url_as(natsauth.ADMIN))
        assert new_leader != leader, "the killed leader still leads?"
        (follower,) = [f for f in followers if f != leader]
        cluster.node(follower).kill()
        killed.append(follower)
        await asyncio.sleep(_QUORUM_LOSS_S)
        probe = Recovery(stack)
        await probe.mark()  # the restart's figures count from here, like `ready`
        restarted = time.monotonic()
        for name in killed:
            await asyncio.to_thread(cluster.node(name).start)
        await asyncio.to_thread(cluster.wait_healthy)  # every replica current again
        ready = time.monotonic() - restarted
        scenario.recovery["restart.first_ack"] = await probe.first_ack(_RECOVERY_BOUND_S)
        scenario.recovery["restart.caught_up"] = await probe.caught_up(_RECOVERY_BOUND_S)
        return ready

    scenario = Scenario("R3 leader kill -9, then a follower, then restart both", stack,
                        tmp_path, seed=505, seconds=30, results=chaos_results)  # fmt: skip
    figures = await scenario.run(fault)
    _players.update(figures.players)
    print(f"[chaos] killed {killed[0]} (leader), then {killed[1]} (follower)")
    assert_exact(figures)
    assert figures.recovery["leader_kill.first_ack"] is not None, "no ack after leader kill"
    assert figures.recovery["restart.caught_up"] is not None, "never caught up after restart"
    _, followers = await stream_peers(stack.nats_url_as(natsauth.ADMIN))
    assert len(followers) == 2 and all(node.running for node in cluster.nodes)


async def test_aggregator_commit_faults_at_random(
    cluster_stack: LocalStack, tmp_path: Path, chaos_results: Path
) -> None:
    """Both aggregators throw from the commit path at random (FAULT_COMMIT_RATE): before
    storing, after storing but before any ack, and halfway through the acks. Each failed batch
    is nak'd and redelivered; what was stored already is suppressed as duplicate."""
    stack = cluster_stack
    variable = "GAMEPLAY_ANALYTICS_FAULT_COMMIT_RATE"

    async def restart_aggregators(rate: str | None) -> None:
        for aggregator in stack.aggregators:
            await asyncio.to_thread(aggregator.stop)
            if rate is None:
                aggregator.env.pop(variable, None)
            else:
                aggregator.env[variable] = rate
            aggregator.start()
        for aggregator in stack.aggregators:
            await ready(aggregator)

    await restart_aggregators(_FAULT_RATE)
    try:

        async def fault() -> None:
            """The faults are the aggregators' own, throughout the load; midway, time how long
            they take to store everything published so far (their lag under faults)."""
            await asyncio.sleep(8)
            probe = Recovery(stack)
            await probe.mark()
            scenario.recovery["caught_up_under_faults"] = await probe.caught_up(_RECOVERY_BOUND_S)

        scenario = Scenario("aggregator commit faults at random (R3)", stack, tmp_path,
                            seed=606, seconds=18, results=chaos_results)  # fmt: skip
        figures = await scenario.run(fault)
        _players.update(figures.players)
    finally:
        await restart_aggregators(None)
    assert_exact(figures)
    assert figures.faults_injected > 0, f"the hook never fired: {figures.line()}"
    assert figures.duplicates_suppressed > 0, f"no stored-but-unacked batch? {figures.line()}"
    assert figures.recovery["caught_up_under_faults"] is not None, figures.line()


async def test_privacy_scan_after_cluster_chaos(cluster_stack: LocalStack) -> None:
    """Hot store, DLQ and every log (the three nats-servers' too) hold no raw player UUID or IP
    after the cluster scenarios. The warm store is the single-server suite's to scan."""
    stack = cluster_stack
    cluster = stack.nats
    assert isinstance(cluster, NatsCluster) and stack.gateway is not None
    ports = {
        *cluster.ports, stack.postgres.port, stack.ws_port, stack.gateway.metrics_port,
        *(a.metrics_port for a in stack.aggregators),
    }  # fmt: skip
    report = await privacy_scan.scan_all(
        dsn=stack.postgres.dsn,
        warehouse_root=None,
        nats_url=stack.nats_url_as(Role.PRIVACY),  # all three nodes
        log_paths=sorted(stack.config.data_dir.resolve().rglob("*.log")),
        player_uuids=_players,
        server_ports=ports,
    )
    routes = [f for f in report.findings if _peer_route(f)]
    report.findings = [f for f in report.findings if not _peer_route(f)]
    print(report.line(f"cluster chaos ({len(_players)} players)"),
          f"peer_route_lines_allowed={len(routes)}")  # fmt: skip
    assert _players, "no scenario ran: the scan would prove nothing"
    assert report.findings == [], "\n".join(map(str, report.findings[:20]))


def _peer_route(finding: privacy_scan.Finding) -> bool:
    """A nats-server's line about a route to a peer server (`rid:`, e.g. "127.0.0.1:58952 -
    rid:9 - Route connection created"): the peer's address with an ephemeral port, which the
    scan's listen-port allowance cannot know. Server addresses, never a player's: players do
    not connect to NATS."""
    return (
        finding.what == "ip"
        and finding.where == "log:nats-server.log"
        and " - rid:" in finding.excerpt
    )
