"""`ServerEmitter`: a game server's simulation emits authoritative events (combat, inventory;
the same taxonomy and schemas as the clients), stored with `source = server`.

It speaks the relay (docs/relay.md) with `relay_hello.source = "server"`, authenticated by the
relay's service token: one WebSocket per server instance, one relay `conn` per player. Each
player gets an `AnalyticsClient` whose `client_guid` is derived from the server instance's
guid and the player (`server_client_guid`), so the server's events have a sequence space of
their own, apart from the player's installations, and dedup keys never collide with them;
with `state_dir`, seqs persist across restarts like an installation's. Batching, acks,
resends after a reconnect and the sampling rules are the Python SDK's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from gameplay_analytics.sampling import hashing
from gameplay_analytics.sdk.client import AnalyticsClient

__all__ = ["RELAY_VERSION", "ServerEmitter", "server_client_guid"]

log = logging.getLogger(__name__)

RELAY_VERSION = 1
_TICK_S = 0.05


def server_client_guid(instance_guid: str | uuid.UUID, player_uuid: str) -> str:
    """The `client_guid` of a server instance's events about one player (uuid5, stable)."""
    return str(uuid.uuid5(uuid.UUID(str(instance_guid)), hashing.canonical_uuid(player_uuid)))


class ServerEmitter:
    """Emit a game server's own events about its players; `start()`, `track()`, `stop()`.

    `url` is the gateway's relay endpoint (`ws://HOST:PORT/relay`); `service_token` its
    service JWT (or a callable minting a fresh one per connection). `track()` never blocks
    or raises, like the SDK's.
    """

    def __init__(
        self,
        url: str,
        *,
        service_token: str | Callable[[], str],
        instance_guid: str | uuid.UUID,
        state_dir: Path | None = None,
        build: str = "",
        platform: str = "server",
        flush_interval_s: float | None = None,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.url = url
        self.instance_guid = str(uuid.UUID(str(instance_guid)))
        self._token = service_token
        self._state_dir = state_dir
        self._client_options: dict[str, Any] = {"build": build, "platform": platform}
        if flush_interval_s is not None:
            self._client_options["flush_interval_s"] = flush_interval_s
        self._reconnect_max = reconnect_max_s
        self._players: dict[str, AnalyticsClient] = {}
        self._consents: dict[str, dict[str, bool]] = {}
        self._closing: set[str] = set()  # conns to close before they are opened again
        self._opened: set[str] = set()  # conns whose hello went out on this connection
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()
        self.connections = 0  # relay connections welcomed so far
        self.errors = 0

    # -- the simulation's side -------------------------------------------------------------

    def track(self, player_uuid: str | uuid.UUID, name: str, /, **props: Any) -> None:
        """Record one authoritative event about `player_uuid`. Never raises."""
        try:
            self.client(player_uuid).track(name, **props)
        except Exception:
            self.errors += 1

    def client(self, player_uuid: str | uuid.UUID) -> AnalyticsClient:
        """The player's emitter-side client (its `stats` tell what became of the events)."""
        player = hashing.canonical_uuid(str(player_uuid))
        found = self._players.get(player)
        if found is None:
            found = self._players[player] = AnalyticsClient(
                player_uuid=player,
                client_guid=server_client_guid(self.instance_guid, player),
                token="",  # the relay's service token vouches for the player
                state_dir=self._state_dir,
                report_crash=False,
                consent=self._consents.get(player),
                **self._client_options,
            )
        return found

    def set_consent(self, player_uuid: str | uuid.UUID, consent: dict[str, bool]) -> None:
        """The player's consent as their client reported it (`hello.consent`): with
        `analytics: false` nothing more about them is sent or stored; `social: false`
        withholds social events. A change reopens the player's conn with the new consent;
        events tracked before it and not yet sent are dropped (the player's choice wins)."""
        player = hashing.canonical_uuid(str(player_uuid))
        if self._consents.get(player) == consent:
            return
        self._consents[player] = dict(consent)
        if self._players.pop(player, None) is not None and player in self._opened:
            self._opened.discard(player)
            self._closing.add(player)

    @property
    def idle(self) -> bool:
        """Nothing buffered or unacknowledged for any player."""
        return all(c.idle for c in self._players.values())

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="server-emitter")
        return self._task

    async def stop(self, *, flush_timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until every event is acknowledged, then close. True when flushed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_timeout_s
        flushed = True
        while not self.idle:
            if loop.time() >= deadline:
                flushed = False
                break
            await asyncio.sleep(0.01)
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return flushed

    def disconnect(self) -> None:
        """Drop the relay abruptly (as a network failure would); the emitter reconnects and
        resends what was not acknowledged, stored once by its (player, guid, seq) key."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                await self._session()
                delay = 0.1
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as err:
                log.info("server emitter: relay lost (%s); retrying", type(err).__name__)
            if self._stopping:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(self._reconnect_max, delay * 2)

    async def _session(self) -> None:
        async with connect(self.url, open_timeout=5.0, compression=None, max_size=None) as ws:
            token = self._token() if callable(self._token) else self._token
            hello = {"type": "relay_hello", "version": RELAY_VERSION, "token": token}
            await ws.send(json.dumps(hello | {"source": "server"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
            if reply.get("type") != "relay_welcome":
                log.error("server emitter: relay refused: %s", reply.get("detail"))
                raise OSError("relay refused the service token")
            self._ws = ws
            self.connections += 1
            self.connected.set()
            sender = asyncio.create_task(self._send_loop(ws))
            try:
                async for message in ws:
                    self._on_message(message)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await sender
                self._ws = None
                self.connected.clear()
                self._opened.clear()
                self._closing.clear()  # the gateway closed every conn with the relay
                for client in self._players.values():
                    client.on_disconnected()

    def _on_message(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
            client = self._players.get(str(frame.get("conn")))
            if client is None:
                return
            if frame.get("type") == "relay":
                client.on_frame(frame["frame"])
            elif frame.get("type") == "relay_closed":  # opened again with the next frames
                self._opened.discard(client.player_uuid)
                client.on_disconnected()
        except (ValueError, KeyError, TypeError, AttributeError):
            self.errors += 1

    async def _send_loop(self, ws: ClientConnection) -> None:
        while True:
            while self._closing:
                await ws.send(json.dumps({"type": "relay_close", "conn": self._closing.pop()}))
            for player, client in list(self._players.items()):
                out: list[bytes] = []
                if player not in self._opened:
                    self._opened.add(player)
                    out.append(client.on_connected())
                if client.welcomed:
                    out.extend(client.poll())
                for data in out:
                    relay = {"type": "relay", "conn": player, "player": player}
                    await ws.send(json.dumps(relay | {"frame": data.decode()}))
            await asyncio.sleep(_TICK_S)
