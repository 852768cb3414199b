"""A SamplingPolicy edit reaches a running gateway and its connected SDK, with no reconnect."""

from __future__ import annotations

import uuid

import pytest

from gameplay_analytics.contract import messages
from gameplay_analytics.runtime.gateway import Gateway, issue_token
from gameplay_analytics.sdk import AnalyticsClient, WebSocketConnector
from tests.integration.test_gateway_e2e import SECRET, gateway_settings
from tests.operator.conftest import cr_url, until
from tests.operator.emulator import Emulator
from tests.operator.test_operator import AP, MERGE, pipeline

pytestmark = pytest.mark.integration


async def test_running_gateway_serves_the_new_rules_to_a_connected_sdk(
    k8s: Emulator, operator: object, nats_url: str
) -> None:
    policy = {
        "apiVersion": "analytics.gameplay.dev/v1alpha1",
        "kind": "SamplingPolicy",
        "metadata": {"name": "live"},
        "spec": {"rules": {"events": {"xp_gain": {"rate": 0.9}}}},
    }
    await k8s.post(cr_url("samplingpolicies"), json=policy)
    # The gateway here reads the local stack's bucket: the pipeline is pointed at it.
    body = pipeline(
        nats_url,
        samplingPolicyRef={"name": "live"},
        nats={"url": nats_url, "configBucket": messages.KV_BUCKET},
    )
    await k8s.post(cr_url("analyticspipelines"), json=body)
    first = await until(
        lambda: (k8s.get_obj(AP, "default", "p1").get("status") or {}).get("samplingVersion")
    )

    gw = Gateway(gateway_settings(nats_url, rules_grace_s=0.0))
    await gw.start()
    player = str(uuid.uuid4())
    client = AnalyticsClient(
        player_uuid=player, client_guid=uuid.uuid4(), token=issue_token(player, secret=SECRET)
    )
    connector = WebSocketConnector(client, gw.url)
    try:
        connector.start()
        await until(lambda: client.welcomed and client.sampling_version == first)
        session = client.session_id

        await k8s.patch(
            cr_url("samplingpolicies", "live"),
            json={"spec": {"rules": {"events": {"xp_gain": {"rate": 0.4}}}}},
            headers=MERGE,
        )
        second = await until(
            lambda: (
                k8s.get_obj(AP, "default", "p1")["status"]["samplingVersion"] != first
                and k8s.get_obj(AP, "default", "p1")["status"]["samplingVersion"]
            )
        )
        await until(lambda: client.sampling_version == second)
        assert gw.live.rules.rate_for("xp_gain") == 0.4
        assert client.session_id == session  # the same session: no reconnect
    finally:
        await connector.stop(flush_timeout_s=0)
        await gw.drain_and_stop()
