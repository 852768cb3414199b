"""A pipeline whose components each log in as their own least-privilege NATS user, from the
Secrets `spec.nats.users` names: the operator creates the stream and rules as `operator`, the
gateway and aggregator pods run as theirs, events flow end to end, and the server refused
nothing (its log has no permission violation)."""

from __future__ import annotations

import json
import secrets
import urllib.request
import uuid
from pathlib import Path

import pytest

from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.local.services import NatsServer
from tests.cluster.conftest import apply, secret, until
from tests.cluster.kubelet import Kubelet
from tests.cluster.test_cluster_e2e import deploy, events_stored, sdk
from tests.conftest import fresh_database
from tests.integration.test_gateway_e2e import play
from tests.operator.emulator import Emulator

pytestmark = pytest.mark.integration

_COMPONENTS = ("gateway", "aggregator", "operator", "quality")


def _users(server: NatsServer) -> dict[str, str]:
    """The NATS user of each connection, as the server sees it."""
    url = f"http://127.0.0.1:{server.monitor_port}/connz?auth=true"
    with urllib.request.urlopen(url, timeout=5) as reply:
        conns = json.loads(reply.read())["connections"] or []
    return {c.get("name", ""): c.get("authorized_user", "") for c in conns}


async def test_each_component_runs_as_its_own_user(
    k8s: Emulator, kubelet: Kubelet, postgres_dsn: str, s3_endpoint: str, tmp_path: Path
) -> None:
    namespace = f"users-{uuid.uuid4().hex[:6]}"
    prefix = f"{namespace}-minimal"  # what `nats-permissions --pipeline` names them
    names = PipelineNames.for_pipeline(namespace, "minimal")
    users = natsperms.user_names(prefix)
    passwords = {role: secrets.token_urlsafe(12) for role in natsperms.ROLES}
    server = NatsServer(
        tmp_path / "nats",
        auth_config=natsperms.authorization_block(names, passwords, users=users),
    )
    server.start()
    try:
        for component in _COMPONENTS:
            role = natsperms.Role(component)
            body = secret(f"nats-{component}", user=users[role], password=passwords[role])
            await apply(k8s, body, namespace)
        async with fresh_database(postgres_dsn, "natsusers") as dsn:
            name = await deploy(
                k8s, namespace=namespace, dsn=dsn, nats_url=server.url, s3=s3_endpoint,
                nats={
                    "url": server.url,
                    "users": {c: {"name": f"nats-{c}"} for c in _COMPONENTS},
                },
            )  # fmt: skip
            (port,) = kubelet.endpoints(namespace, f"{name}-gateway", "ws")
            client, connector = sdk(port)
            connector.start()
            play(client, 10)
            await until(lambda: client.stats.events_acked == client.stats.buffered > 0)
            await until(lambda: _stored(dsn, client.stats.buffered), what="rows in Postgres")
            await connector.stop(flush_timeout_s=5)
            logged_in = set(_users(server).values())
            assert {users[natsperms.Role.GATEWAY], users[natsperms.Role.AGGREGATOR]} <= logged_in
            assert "" not in logged_in  # nobody anonymous
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]


async def _stored(dsn: str, expected: int) -> bool:
    return (await events_stored(dsn))[0] >= expected
