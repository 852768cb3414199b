"""The aggregator's sampled payload log, in a real run: every line JSON, samples present,
and no line holds a player's UUID, an installation's GUID, a session id or an IP."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

from nats.js import JetStreamContext

from tests.integration.support import (
    aggregating,
    batch,
    count_rows,
    event,
    publish,
    wait_for,
)
from tests.integration.test_structured_logs import _UUID, log_lines

__all__ = ["log_lines"]

IP = "81.2.69.142"


async def test_sampled_payloads_are_logged_without_raw_identifiers(
    nats_url: str, database: str, js: JetStreamContext, log_lines: io.StringIO
) -> None:
    players = [(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(4)]
    batches = [
        batch(player, guid, [event(1), event(2, "engage_enemy"), event(3)],
              session=session, ip=IP)
        for player, guid, session in players
    ]  # fmt: skip
    async with aggregating(nats_url, database, js, payload_log_rate=1.0, batch_size=3):
        await publish(js, batches)
        await wait_for(lambda: _rows_are(database, 12))
    secrets = {value.lower() for ids in players for value in ids}
    lines = log_lines.getvalue().splitlines()
    samples: list[dict[str, Any]] = []
    findings: list[str] = []
    for line in lines:
        doc = json.loads(line)
        if doc["msg"] == "payload sample":
            samples.append(doc["payload"])
        if IP in line:
            findings.append(f"ip: {line}")
        findings.extend(f"uuid: {line}" for m in _UUID.finditer(line) if m[0].lower() in secrets)
    assert findings == []
    assert len(samples) == 4
    assert all(len(s["analytics_player_id"]) == 64 and s["events_stored"] == 3 for s in samples)
    assert {e["name"] for s in samples for e in s["events"]} == {"xp_gain", "engage_enemy"}


async def _rows_are(dsn: str, n: int) -> bool:
    return await count_rows(dsn) == n
