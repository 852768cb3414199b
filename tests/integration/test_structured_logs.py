"""Every log line of a run is one JSON object, and none holds a raw identifier.

Players (from 127.0.0.2, so their address is not the servers' own) play through an in-process
gateway and aggregator logging at DEBUG; each line is parsed and scanned for the players'
UUIDs, their installations' GUIDs, their session ids and their IP.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from nats.js import JetStreamContext
from websockets.asyncio.client import connect

from gameplay_analytics.runtime import logs
from gameplay_analytics.sdk import WebSocketConnector
from gameplay_analytics.sdk import connector as sdk_connector
from tests.integration.support import aggregating, count_rows, wait_for
from tests.integration.test_gateway_e2e import new_client, play, running_gateway

pytestmark = pytest.mark.integration

CLIENT_IP = "127.0.0.2"
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process' logging routed to a buffer as in production; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure(
        "test", settings=logs.LogSettings(log_level="DEBUG", pipeline="p"), stream=buffer
    )
    try:
        yield buffer
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


async def test_a_run_logs_json_lines_without_raw_identifiers(
    nats_url: str,
    database: str,
    js: JetStreamContext,
    log_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        sdk_connector, "connect", functools.partial(connect, local_addr=(CLIENT_IP, 0))
    )
    async with running_gateway(nats_url) as gateway, aggregating(nats_url, database, js):
        clients = [new_client(gateway) for _ in range(3)]
        connectors = [WebSocketConnector(c, gateway.url) for c in clients]
        for connector in connectors:
            connector.start()
        for client in clients:
            play(client, 20)
        assert all(await asyncio.gather(*(c.stop(flush_timeout_s=10) for c in connectors)))
        await wait_for(lambda: _stored_some(database))
        # A bad frame and a bad token: refusals are logged too.
        async with connect(gateway.url, local_addr=(CLIENT_IP, 0)) as ws:
            await ws.send(json.dumps({"type": "hello", "token": "not-a-jwt"}))
            await ws.recv()
    secrets = {c.player_uuid.lower() for c in clients} | {
        str(c.client_guid).lower() for c in clients
    }
    lines = log_lines.getvalue().splitlines()
    assert len(lines) > 5, "a run at DEBUG logs something"
    findings: list[str] = []
    for line in lines:
        doc: dict[str, Any] = json.loads(line)  # one object a line, or this raises
        assert {"ts", "level", "component", "pipeline", "logger", "msg"} <= set(doc), doc
        assert doc["component"] == "test" and doc["pipeline"] == "p"
        if CLIENT_IP in line:
            findings.append(f"client ip: {line}")
        for match in _UUID.finditer(line):
            token = match.group(0).lower()
            if token in secrets or len(token) == 36:
                findings.append(f"identifier {token}: {line}")
    assert findings == []


async def _stored_some(dsn: str) -> bool:
    return await count_rows(dsn) > 0


def test_a_record_with_identifiers_is_redacted() -> None:
    player, ip = str(uuid.uuid4()), "81.2.69.160"
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "player %s from %s", (player, ip), None
    )
    record.peer = (ip, 5555)
    record.count = 3
    line = logs.JsonFormatter("gateway", "live").format(record)
    doc = json.loads(line)
    assert player not in line and ip not in line
    assert doc["msg"] == "player <uuid> from <ip>"
    assert doc["peer"] == ["<ip>", 5555] and doc["count"] == 3
    assert (doc["level"], doc["component"], doc["pipeline"]) == ("warning", "gateway", "live")
