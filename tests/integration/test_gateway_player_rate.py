"""Per-player rate limit with a real gateway: ten sockets of one player share one budget,
while ten players with one socket each are all served."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gameplay_analytics.runtime.gateway import Gateway
from tests.integration.test_gateway_e2e import running_gateway
from tests.integration.test_gateway_refusals import envelope, hello

pytestmark = pytest.mark.integration

SOCKETS = 10


async def one_frame_each(gw: Gateway, players: list[str]) -> tuple[list[dict[str, Any]], float]:
    """Every socket sends one frame (well within its connection's own budget): the replies,
    and the seconds from the first send to the last reply."""
    async with contextlib.AsyncExitStack() as stack:
        sockets: list[ClientConnection] = []
        for player in players:
            ws = await stack.enter_async_context(connect(gw.url))
            assert (await hello(ws, player))["type"] == "welcome"
            sockets.append(ws)
        started = time.monotonic()
        for ws in sockets:
            await ws.send(envelope(1, 1))
        replies = [json.loads(await ws.recv()) for ws in sockets]
        return replies, time.monotonic() - started


async def test_ten_sockets_of_one_player_share_one_budget(nats_url: str) -> None:
    async with running_gateway(nats_url, max_player_rate_hz=1) as gw:
        player = str(uuid.uuid4())
        replies, elapsed = await one_frame_each(gw, [player] * SOCKETS)
        acked = [r for r in replies if r["type"] == "ack"]
        limited = [r for r in replies if r.get("code") == "rate_limited"]
        assert len(acked) + len(limited) == SOCKETS
        # A 1 Hz budget with a burst of 1: at most 1 + (whole seconds elapsed) frames.
        assert 1 <= len(acked) <= 1 + math.ceil(elapsed)
        assert limited and "for this player" in limited[0]["detail"]
        # The player's sockets left: their budget goes with them; other players never shared it.
        others, _ = await one_frame_each(gw, [str(uuid.uuid4()) for _ in range(SOCKETS)])
        assert [r["type"] for r in others] == ["ack"] * SOCKETS
        for _ in range(100):  # the server notices the closes on its own tasks
            if len(gw.budgets) == 0:
                break
            await asyncio.sleep(0.05)
        assert len(gw.budgets) == 0
