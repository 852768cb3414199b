"""A cheap open-loop WebSocket load generator: the benches' game clients, not their limit.

Issue 17 wants the load generator not to be what limits the gateway's figure. The `websockets`
client cost about 100 µs of Python per sent frame (20 event dicts built and encoded, framing
and masking, a timer and a reader task per client): on 2 cores, 1,000 clients at 10 Hz took
most of a core. Here, per load generator process:

- each client is a raw `asyncio.Protocol`: the HTTP upgrade once, then frames written as
  bytes. An `analytics` frame is a bytes template with only `id`, the events' `seq` and the
  enemy id derived from it substituted: exactly the JSON `orjson` makes of the same dict
  (`frame_doc`). Client frames carry the all-zero masking key (RFC 6455 lets the key be any
  four bytes; the server unmasks them as any other, so its cost is unchanged and ours is none);
- one scheduler wakes every `TICK_S` and sends every client whose slot is due: each client has
  its own random phase within the 100 ms period. Open loop: it never waits for a reply;
- a client whose socket holds more than HIGH_WATER unsent bytes (the server is not reading it)
  sends nothing, as `await ws.send()` would wait: those frames count as blocked;
- replies are decoded only to count acks, refusals and the send → ack latency; acks after the
  sending window count as late, not as goodput (their latency counts);
- `holds` (the default) is the SDK's way with a refusal (`sdk.client.AnalyticsClient`): a
  client refused with `backpressure` or `rate_limited` sends nothing for `retry_after_ms`
  (jittered and doubled, `sdk.schedule.SendSchedule.hold`), keeps the refused envelope and
  resends it unchanged first; the events the game tracks meanwhile (20 per 100 ms) wait in its
  buffer (counted as held) and go out in the next envelope, up to the protocol's 500
  (`limits.MAX_EVENTS_PER_ENVELOPE`). As the SDK, a client with MAX_IN_FLIGHT envelopes
  unanswered sends no new one (the gateway is not reading them; counted as stalled).
  Nothing is dropped: every offered event is acked, or still buffered or awaiting its resend
  when the window ends (`unsent`).
  With `holds` off the clients ignore the hint: a 20-event frame every 100 ms, each sent, read
  and refused or acked; a refused one is not resent.
- `closed_loop` (the gateway bench's throughput clients): one frame in flight per client, the
  next sent on its reply (after the retry hint of a `backpressure` refusal).

Replies are assumed unfragmented (the `websockets` server sends a message as one frame).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import random
import struct
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import orjson

from gameplay_analytics.contract import limits
from gameplay_analytics.contract.errors import ErrorCode
from gameplay_analytics.runtime.gateway.auth import issue_token
from gameplay_analytics.sdk.client import MAX_IN_FLIGHT, RATE_LIMITED_RETRY_MS
from gameplay_analytics.sdk.schedule import SendSchedule

__all__ = [
    "COUNTS", "EVENTS", "RATE_HZ", "Options", "Stats", "analytics_frame", "connect_clients",
    "frame_doc", "run_clients",
]  # fmt: skip

RATE_HZ = 10
EVENTS = 20
TICK_S = 0.004  # the scheduler's wake-up: sends are at most this late
HIGH_WATER = 64 * 1024  # bytes unsent in a socket's buffer over which a client sends nothing
CONNECTS_AT_ONCE = 64  # handshakes in flight: a burst of 500 SYNs overflows a listen backlog
_NO_RATE_LIMIT = 1_000_000  # SendSchedule.may_send: only the gateway's holds pace the client
_HELD_BY = {str(ErrorCode.BACKPRESSURE), str(ErrorCode.RATE_LIMITED)}
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's handshake constant
_ZERO_MASK = b"\0\0\0\0"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA
_EVENT = (
    b'{"seq":%d,"name":"engage_enemy","ts":1759320000123,'
    b'"props":{"enemy_id":"orc_%d","tier":"boss"}}'
)  # kept at rate 1.0 for every player (boss combat): every event is published


def frame_doc(ident: int, seq: int, events: int = EVENTS) -> dict[str, Any]:
    """The `analytics` frame `analytics_frame` encodes, as the dict a client would build."""
    return orjson.loads(analytics_frame(ident, seq, events))  # type: ignore[no-any-return]


def analytics_frame(ident: int, seq: int, events: int = EVENTS) -> bytes:
    """An `analytics` frame of `events` boss-tier `engage_enemy` events from `seq` on."""
    return b'{"type":"analytics","id":%d,"schema":"1.0.0","events":[%b]}' % (
        ident,
        _events(seq, events),
    )


@functools.lru_cache(maxsize=4096)
def _events(seq: int, events: int) -> bytes:
    """The events' JSON, shared: every client counts its `seq` from 0 in the same steps."""
    return b",".join(_EVENT % (s, s % 97) for s in range(seq, seq + events))


def client_frame(payload: bytes, opcode: int = _TEXT) -> bytes:
    """One final, masked (all-zero key) client → server WebSocket frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


@dataclass(frozen=True, slots=True)
class Options:
    """How the clients behave."""

    events: int = EVENTS  # per `analytics` frame
    bare: bool = False  # the server never replies (no welcome, no acks)
    holds: bool = True  # a backpressure/rate_limited refusal holds the client (the SDK's way)
    closed_loop: bool = False  # one frame in flight: the next on its reply, not at 10 Hz


@dataclass(slots=True)
class Stats:
    """What one process's clients did; latencies in µs (send → ack of accepted frames)."""

    offered: int = 0  # events the game tracked (open loop: 20 per client per 100 ms)
    sent: int = 0  # events in frames handed to the socket (resends included)
    resent: int = 0  # of which in resends of refused envelopes
    held: int = 0  # events tracked while the client was held by a refusal (buffered, not lost)
    blocked: int = 0  # events due while the socket would not take more (the server not reading)
    stalled: int = 0  # events due while MAX_IN_FLIGHT envelopes had no reply (buffered)
    unsent: int = 0  # events still buffered or awaiting a resend when the window ended
    frames: int = 0
    acked: int = 0  # events acked within the sending window
    late: int = 0  # events acked after it (sent in it): not goodput, their latency counts
    refused: int = 0  # frames
    refused_events: int = 0
    failed: int = 0  # clients that could not connect (or were not welcomed)
    closed: int = 0  # clients whose connection closed before the end
    process_cpu_s: float = 0.0  # the whole process's CPU (getrusage), connecting included
    reasons: dict[str, int] = field(default_factory=dict)  # refusals by code: detail
    latencies: list[int] = field(default_factory=list)


COUNTS = tuple(f.name for f in fields(Stats) if f.type in ("int", "float"))  # summed per process
_OF_THE_RUN = ("unsent", "failed", "closed", "process_cpu_s")  # not of the window alone


class _Client(asyncio.Protocol):
    """One WebSocket connection, written with pre-built frames, read only for its replies."""

    def __init__(self, stats: Stats, options: Options, player: str, path: str, host: str) -> None:
        self.stats, self.options, self.player = stats, options, player
        self.events, self.bare = options.events, options.bare
        self.schedule = SendSchedule(1.0 / RATE_HZ, time.monotonic, seed=player)
        self.phase = random.Random(player).random() / RATE_HZ
        self.ident = self.seq = 0
        self.buffered = 0  # events tracked and not yet in an envelope (`holds`)
        self.resends: list[tuple[int, int, int]] = []  # refused envelopes: (id, seq, events)
        self.window_end = float("inf")  # acks after it are late
        self.flight: dict[int, tuple[float, int, int]] = {}  # id: (sent at, seq, events)
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buffer = b""
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.welcomed: asyncio.Future[None] = loop.create_future()
        key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.opened, self.welcomed):
            if not future.done():
                future.set_exception(ConnectionError("closed during the handshake"))

    def due(self, now: float) -> None:
        """The client's slot (every 100 ms): the game tracked `events` more; send what the
        client may (`holds`: the SDK's way), or a new frame of them whatever happened."""
        stats = self.stats
        stats.offered += self.events
        if not self.options.holds:
            self.send(now)
            return
        self.buffered += self.events
        if not self.schedule.may_send(now, _NO_RATE_LIMIT):
            stats.held += self.events
        elif self.resends:
            ident, seq, events = self.resends[0]
            if self.write(now, ident, seq, events):
                self.resends.pop(0)
                stats.resent += events
        elif len(self.flight) >= MAX_IN_FLIGHT:  # the SDK's window: no reply to 8 envelopes
            stats.stalled += self.events
        else:
            events = min(self.buffered, limits.MAX_EVENTS_PER_ENVELOPE)
            if self.send(now, events):
                self.buffered -= events

    def send(self, now: float, events: int | None = None) -> bool:
        """A new `analytics` frame of `events` (default `Options.events`) from the next seq."""
        events = events or self.events
        if not self.write(now, self.ident + 1, self.seq, events):
            return False
        self.ident += 1
        self.seq += events
        return True

    def write(self, now: float, ident: int, seq: int, events: int) -> bool:
        """Hand one frame to the socket, unless it is gone or full (then False)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > HIGH_WATER:  # as `await ws.send()` would wait
            self.stats.blocked += events
            return False
        transport.write(client_frame(analytics_frame(ident, seq, events)))
        if not self.bare:
            self.flight[ident] = (now, seq, events)
        self.stats.sent += events
        self.stats.frames += 1
        return True

    def _next(self, delay_s: float = 0.0) -> None:
        """Closed loop: the next frame now (or after `delay_s`), while the window lasts."""
        if delay_s > 0:
            asyncio.get_running_loop().call_later(delay_s, self._next)
        elif (now := time.monotonic()) < self.window_end:
            self.send(now)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            head, buf = buf[:end], buf[end + 4 :]
            if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                self.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
        pos, n = 0, len(buf)
        while n - pos >= 2:
            length, start = buf[pos + 1] & 0x7F, pos + 2
            if length == 126:
                length, start = int.from_bytes(buf[start : start + 2]), start + 2
            elif length == 127:
                length, start = int.from_bytes(buf[start : start + 8]), start + 8
            if start + length > n:
                break
            self._frame(buf[pos] & 0x0F, buf[start : start + length])
            pos = start + length
        self.buffer = buf[pos:]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == _TEXT:
            self._reply(orjson.loads(payload))
        elif opcode == _PING and self.transport is not None:
            self.transport.write(client_frame(payload, _PONG))
        elif opcode == _CLOSE:
            self.close(payload[:2])

    def _reply(self, reply: dict[str, Any]) -> None:
        kind = reply.get("type")
        if kind == "ack":
            sent = self.flight.pop(reply.get("id"), None)  # type: ignore[arg-type]
            self.schedule.acked()
            if sent is not None:
                at = sent[0]
                now = time.monotonic()
                if now <= self.window_end:
                    self.stats.acked += reply["accepted"]
                else:
                    self.stats.late += reply["accepted"]
                self.stats.latencies.append(round((now - at) * 1e6))
                if self.options.closed_loop:
                    self._next()
        elif kind == "error":
            ident = reply.get("id")
            sent = self.flight.pop(ident, None)  # type: ignore[arg-type]
            self.stats.refused += 1
            if sent is not None:
                self.stats.refused_events += sent[2]
            reason = f"{reply.get('code')}: {reply.get('detail')}"
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
            if reply.get("code") in _HELD_BY:  # as AnalyticsClient does
                delay_s = (reply.get("retry_after_ms") or RATE_LIMITED_RETRY_MS) / 1000
                self.schedule.hold(delay_s)
                if self.options.holds and not self.options.closed_loop and sent is not None:
                    self.resends.append((ident, sent[1], sent[2]))  # type: ignore[arg-type]
                    self.resends.sort()
                if self.options.closed_loop and sent is not None:
                    self._next(delay_s if self.options.holds else 0.0)
            elif not self.welcomed.done():
                self.welcomed.set_exception(ConnectionError(f"refused: {reply}"))
        elif kind == "welcome" and not self.welcomed.done():
            self.welcomed.set_result(None)

    def close(self, code: bytes = b"\x03\xe8") -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(code, _CLOSE))
            self.transport.close()

    async def start(self, host: str, port: int, secret: str) -> None:
        """Connect, upgrade, say hello and (unless bare) wait for the welcome."""
        await asyncio.get_running_loop().create_connection(lambda: self, host, port)
        await self.opened
        hello = {"type": "hello", "token": issue_token(self.player, secret=secret),
                 "client_guid": str(uuid.uuid4()), "schema": "1.0.0"}  # fmt: skip
        assert self.transport is not None
        self.transport.write(client_frame(orjson.dumps(hello)))
        if self.bare:  # a bare server never replies
            self.welcomed.set_result(None)
        await self.welcomed


async def connect_clients(
    url: str, n: int, *, secret: str, options: Options, stats: Stats
) -> list[_Client]:
    """`n` clients connected and welcomed (at most CONNECTS_AT_ONCE handshakes at a time);
    the ones that failed are counted in `stats.failed`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def one() -> _Client | None:
        client = _Client(stats, options, str(uuid.uuid4()), parts.path or "/", parts.netloc)
        async with gate:
            try:
                await asyncio.wait_for(client.start(host, port, secret), 30)
            except (OSError, TimeoutError):
                stats.failed += 1
                client.close()
                return None
        return client

    return [c for c in await asyncio.gather(*(one() for _ in range(n))) if c is not None]


async def drive(
    clients: list[_Client], start: float, duration_s: float, *, warmup_s: float = 0.0
) -> None:
    """Send every client's frame at its slot from `start` (time.monotonic) for `duration_s`
    (closed loop: every client's first frame at `start`, the next on each reply). With
    `warmup_s`, sending begins that much earlier and the counts are zeroed at `start`: the
    window then sees the steady state, not the first burst of every client at once."""
    if not clients:
        return
    order = sorted(clients, key=lambda c: c.phase)
    period, stop = 1.0 / RATE_HZ, start + duration_s
    for client in order:
        client.window_end = stop
    begin = start - warmup_s
    base, i, n = begin, 0, len(order)
    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    if warmup_s > 0:
        asyncio.get_running_loop().call_at(start, _zero_counts, order[0].stats)
    if order[0].options.closed_loop:
        for client in order:
            client.send(time.monotonic())
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
    while (now := time.monotonic()) < stop:
        while base + order[i].phase <= now:  # every slot due: a late tick sends them all
            order[i].due(now)
            i += 1
            if i == n:
                i, base = 0, base + period
        await asyncio.sleep(TICK_S)


def _zero_counts(stats: Stats) -> None:
    """The window starts: what the clients did in the warm-up is not counted."""
    for name in COUNTS:
        if name not in _OF_THE_RUN:
            setattr(stats, name, 0)
    stats.reasons.clear()
    stats.latencies.clear()


async def run_clients(
    clients: list[_Client],
    start: float,
    duration_s: float,
    *,
    tail_s: float,
    warmup_s: float = 0.0,
) -> None:
    """Drive the clients (`drive`), wait `tail_s` for late replies, then close them all."""
    await drive(clients, start, duration_s, warmup_s=warmup_s)
    await asyncio.sleep(tail_s)
    for client in clients:
        if client.transport is None or client.transport.is_closing():
            client.stats.closed += 1
        client.stats.unsent += client.buffered + sum(e for _, _, e in client.resends)
        client.close()
    await asyncio.sleep(0.1)  # let the close frames go out
