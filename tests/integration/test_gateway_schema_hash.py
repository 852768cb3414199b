"""hello.schema_hash: a client built from another document than the gateway's for the same
schema version is accepted and counted, per version; a matching or absent hash is not."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect

from gameplay_analytics.contract.registry import packaged_schema_hash
from gameplay_analytics.runtime.gateway import issue_token
from tests.integration.test_gateway_e2e import SECRET, running_gateway

pytestmark = pytest.mark.integration


def mismatches(schema: str) -> float:
    value = REGISTRY.get_sample_value("analytics_schema_hash_mismatch_total", {"schema": schema})
    return value or 0.0


async def welcomed(url: str, schema_hash: str | None) -> dict[str, object]:
    hello: dict[str, object] = {
        "type": "hello", "token": issue_token(str(uuid.uuid4()), secret=SECRET),
        "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
    }  # fmt: skip
    if schema_hash is not None:
        hello["schema_hash"] = schema_hash
    async with connect(url) as ws:
        await ws.send(json.dumps(hello))
        return dict(json.loads(await ws.recv()))


async def test_a_drifted_client_build_is_counted_per_version(nats_url: str) -> None:
    async with running_gateway(nats_url) as gw:
        before = mismatches("1.0.0")
        assert (await welcomed(gw.url, "sha256:" + "0" * 64))["type"] == "welcome"
        assert mismatches("1.0.0") == before + 1
        assert (await welcomed(gw.url, packaged_schema_hash("1.0.0")))["type"] == "welcome"
        assert (await welcomed(gw.url, None))["type"] == "welcome"
        assert mismatches("1.0.0") == before + 1
