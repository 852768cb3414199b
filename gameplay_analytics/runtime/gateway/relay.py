"""`/relay`: a trusted game server forwards its players' analytics frames over one WebSocket
(docs/relay.md, relay v1), for game servers written in another language.

Each `conn` the game server names gets its own gateway `Session` on an `AnalyticsChannel`,
with the player the game server vouches for: the same validation, sampling guard, dedup, acks
and backpressure as a player's own connection, replies wrapped back with their `conn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Annotated, Literal

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.errors import CloseCode, ErrorCode, ProtocolError
from gameplay_analytics.runtime.gateway import auth
from gameplay_analytics.runtime.gateway.embed import AnalyticsChannel
from gameplay_analytics.runtime.gateway.session import Hub, Session

__all__ = ["RELAY_PATH", "RELAY_VERSION", "serve_relay"]

log = logging.getLogger(__name__)

RELAY_PATH = "/relay"
RELAY_VERSION = 1
MAX_CONNS = 10_000
"""Player connections one relay socket may carry at once; more are refused per frame."""
_CLOSE_TIMEOUT_S = 5.0

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RelayHello(msgspec.Struct, tag_field="type", tag="relay_hello"):
    version: int
    token: Annotated[str, msgspec.Meta(max_length=8192)]
    source: Literal["client", "server"] = "client"
    """`server`: every conn carries the game server's own events (`ServerEmitter`), stored
    with `source = server`; `client` (the default): its players' frames."""


class RelayFrame(msgspec.Struct, tag_field="type", tag="relay"):
    conn: _Id
    player: uuid.UUID
    frame: str


class RelayClose(msgspec.Struct, tag_field="type", tag="relay_close"):
    conn: _Id


_decode = msgspec.json.Decoder(RelayHello | RelayFrame | RelayClose).decode


class _Conn:
    __slots__ = ("channel", "player", "task")

    def __init__(self, channel: AnalyticsChannel, player: str, task: asyncio.Task[None]) -> None:
        self.channel, self.player, self.task = channel, player, task


async def serve_relay(ws: ServerConnection, hub: Hub) -> None:
    """Serve one game server's relay connection until it closes."""
    secret = hub.settings.relay_secret
    if secret is None:  # the app refuses the path already; defence in depth
        await ws.close(CloseCode.UNAUTHORIZED, "relay is not enabled")
        return
    try:
        service, source = await _handshake(ws, secret.get_secret_value(), hub)
    except ProtocolError as err:
        await _send_error(ws, err.code, err.detail)
        await ws.close(CloseCode.UNAUTHORIZED, err.detail[:120])
        return
    except (TimeoutError, ConnectionClosed):
        with contextlib.suppress(Exception):
            await ws.close(CloseCode.HELLO_TIMEOUT, "no relay_hello in time")
        return
    await ws.send(
        json.dumps({"type": "relay_welcome", "version": RELAY_VERSION, "service": service})
    )
    log.info("relay open for service %s (source %s)", service, source)
    conns: dict[str, _Conn] = {}
    try:
        async for data in ws:
            try:
                _dispatch(ws, hub, conns, _decode(data), source)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                await _send_error(
                    ws, ErrorCode.BAD_REQUEST, f"relay frame: {frames.decode_detail(err)}"
                )
            except ProtocolError as err:
                await _send_error(ws, err.code, err.detail)
    except ConnectionClosed:
        pass
    finally:
        for conn in conns.values():
            conn.channel.abort()
        tasks = [c.task for c in conns.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_S)


async def _handshake(ws: ServerConnection, secret: str, hub: Hub) -> tuple[str, str]:
    data = await asyncio.wait_for(ws.recv(decode=False), hub.settings.hello_timeout_s)
    try:
        hello = _decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "the first frame must be relay_hello") from None
    if not isinstance(hello, RelayHello):
        raise ProtocolError(ErrorCode.UNAUTHORIZED, "the first frame must be relay_hello")
    if hello.version != RELAY_VERSION:
        raise ProtocolError(
            ErrorCode.UNAUTHORIZED, f"relay version {hello.version} unknown; this gateway speaks 1"
        )
    service = auth.verify_service_token(
        hello.token, secret=secret, leeway_s=hub.settings.jwt_leeway_s
    )
    return service, hello.source


def _dispatch(
    ws: ServerConnection,
    hub: Hub,
    conns: dict[str, _Conn],
    frame: RelayHello | RelayFrame | RelayClose,
    source: str,
) -> None:
    if isinstance(frame, RelayHello):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "relay_hello: the relay already has one")
    if isinstance(frame, RelayClose):
        conn = conns.pop(frame.conn, None)
        if conn is not None:
            conn.channel.abort()
        return
    player = str(frame.player)
    conn = conns.get(frame.conn)
    if conn is None:
        if len(conns) >= MAX_CONNS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"more than {MAX_CONNS} open conns")
        conn = conns[frame.conn] = _open(ws, hub, conns, frame.conn, player, source)
    elif conn.player != player:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"conn {frame.conn}: another player's")
    conn.channel.offer(frame.frame)  # frames that are not analytics (input) are ignored


def _open(
    ws: ServerConnection,
    hub: Hub,
    conns: dict[str, _Conn],
    conn_id: str,
    player: str,
    source: str,
) -> _Conn:
    async def send(text: str) -> None:
        await ws.send(json.dumps({"type": "relay", "conn": conn_id, "frame": text}))

    channel = AnalyticsChannel(send)
    session = Session(channel, hub, player=auth.Principal(player_uuid=player, source=source))
    task = asyncio.create_task(session.serve(), name=f"relay-session-{conn_id}")

    def ended(_: asyncio.Task[None]) -> None:
        if conns.get(conn_id) is not None and conns[conn_id].task is task:
            del conns[conn_id]
        if channel.closed_with is not None:  # the gateway ended it (e.g. a bad hello)
            code, reason = channel.closed_with
            closed = {"type": "relay_closed", "conn": conn_id, "code": code, "reason": reason}
            task_send = asyncio.ensure_future(ws.send(json.dumps(closed)))
            task_send.add_done_callback(lambda f: f.cancelled() or f.exception())

    task.add_done_callback(ended)
    return _Conn(channel, player, task)


async def _send_error(ws: ServerConnection, code: ErrorCode, detail: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(frames.encode(frames.Error(code=str(code), detail=detail)).decode())
