"""Synthetic players speaking the analytics WebSocket protocol (PROTOCOL.md §1) to a gateway.

Deliberately written against the wire contract, not the SDK's internals: the e2e run proves
that what a game client sends over the mapped port ends up stored.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from websockets.asyncio.client import ClientConnection, connect

SCHEMA = "1.0.0"
REPLY_TIMEOUT_S = 30.0


def token(secret: str, player: uuid.UUID, ttl_s: int = 3600) -> str:
    claims = {"sub": str(player), "exp": int(time.time()) + ttl_s, "region": "eu"}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Player:
    """One connected player: `hello` sent, `welcome` received."""

    ws: ClientConnection
    player: uuid.UUID
    client_guid: uuid.UUID
    welcome: dict[str, Any]
    seq: int = 0
    envelope: int = 0
    pushed: list[dict[str, Any]] = field(default_factory=list)  # `sampling` frames seen

    @classmethod
    async def join(cls, url: str, secret: str) -> Player:
        player, client_guid = uuid.uuid4(), uuid.uuid4()
        ws = await connect(url, open_timeout=REPLY_TIMEOUT_S)
        hello = {
            "type": "hello",
            "token": token(secret, player),
            "client_guid": str(client_guid),
            "schema": SCHEMA,
            "build": "e2e+kind",
            "platform": "linux64",
            "consent": {"analytics": True, "social": True},
        }
        await ws.send(json.dumps(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S))
        if welcome.get("type") != "welcome":
            await ws.close()
            raise AssertionError(f"expected welcome, got {welcome}")
        return cls(ws=ws, player=player, client_guid=client_guid, welcome=welcome)

    async def send(self, events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """One `analytics` envelope; returns its `ack` (or raises on an `error`)."""
        self.envelope += 1
        batch = []
        for name, props in events:
            self.seq += 1
            batch.append(
                {"seq": self.seq, "name": name, "ts": int(time.time() * 1000), "props": props}
            )
        frame = {"type": "analytics", "id": self.envelope, "schema": SCHEMA, "events": batch}
        await self.ws.send(json.dumps(frame))
        while True:
            reply = await self.next_frame(REPLY_TIMEOUT_S)
            if reply.get("type") == "ack" and reply.get("id") == self.envelope:
                return reply
            if reply.get("type") == "error":
                raise AssertionError(f"gateway refused envelope {self.envelope}: {reply}")

    async def next_frame(self, timeout_s: float) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        if frame.get("type") == "sampling":
            self.pushed.append(frame)
        return frame

    async def wait_for_sampling(self, not_version: str, timeout_s: float) -> dict[str, Any]:
        """The first pushed `sampling` frame whose version differs from `not_version`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        for frame in self.pushed:
            if frame.get("sampling_version") != not_version:
                return frame
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                frame = await self.next_frame(left)
            except TimeoutError:
                break
            if frame.get("type") == "sampling" and frame.get("sampling_version") != not_version:
                return frame
        raise AssertionError(f"no new `sampling` frame within {timeout_s:.0f} s")

    async def close(self) -> None:
        await self.ws.close()


# Events every rule keeps at rate 1.0 (session lifecycle, combat outcome): the stored count is
# exact whatever the sampling multiplier is.
ALWAYS_KEPT: list[tuple[str, dict[str, Any]]] = [
    ("session_start", {"character_class": "ranger", "character_level": 12}),
    ("encounter_end", {"encounter_id": "crypt-3", "tier": "elite", "outcome": "win"}),
    ("reconnect", {"attempt": 1}),
    ("session_end", {"reason": "logout"}),
]
