"""Hostile clients against a live in-process gateway, while an honest client keeps playing.

Every hostile test runs while `honest` sends an envelope every 100 ms and times its ack; the
module ends by printing ack latency before/during the attacks and the process RSS, and by a
privacy scan of what the suite left at rest (Postgres via an in-process aggregator, the DLQ,
the logs). Timing is printed, never asserted beyond a generous sanity bound.

Decided here (docs/runbooks/chaos.md): a token replayed on a second connection is accepted.
A token is a bearer credential for the player, and a player may run two clients at once; what
keeps the data right is the event key (player, client_guid, seq), so the same events sent on
both connections are stored once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import resource
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime import privacy_scan
from gameplay_analytics.runtime.aggregator import Aggregator
from gameplay_analytics.runtime.gateway import Gateway, issue_token
from tests.conftest import admin_url, fresh_database
from tests.integration.support import next_seq, settings
from tests.integration.test_gateway_e2e import SECRET, gateway_settings

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]

FRAME_LIMIT = 256 * 1024
IDLE_CONNECTIONS = 5_000
SANITY_LATENCY_S = 5.0
CHAT_CANARY = "CHAT-CANARY meet me behind the inn"
HONEST_PLAYER = str(uuid.uuid4())
_players: set[str] = {HONEST_PLAYER}


def boss(seq: int) -> dict[str, Any]:
    props = {"encounter_id": "e1", "tier": "boss", "outcome": "win"}
    return {"seq": seq, "name": "encounter_end", "ts": int(time.time() * 1000), "props": props}


def envelope(ident: int, events: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "analytics", "id": ident, "schema": "1.0.0", "events": events})


def token_for(player: str, **kwargs: Any) -> str:
    _players.add(player)
    return issue_token(player, secret=SECRET, **kwargs)


async def hello(
    ws: ClientConnection, player: str | None = None, *, token: str | None = None,
    guid: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    player = player or str(uuid.uuid4())
    frame = {
        "type": "hello", "token": token or token_for(player),
        "client_guid": guid or str(uuid.uuid4()), "schema": "1.0.0",
    }  # fmt: skip
    await ws.send(json.dumps(frame))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


async def refused(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error frame, then the close code."""
    error = json.loads(await asyncio.wait_for(ws.recv(), 5))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    return error, ws.close_code


# -- the honest client ----------------------------------------------------------------------


class Honest:
    """Sends one 3-event envelope every 100 ms (the SDK's 10 Hz) and times each ack."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.guid = str(uuid.uuid4())
        self.samples: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.phase = "before"
        self.seq = 0
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with connect(self.url) as ws:
            reply = await hello(ws, HONEST_PLAYER, guid=self.guid)
            assert reply["type"] == "welcome"
            ident = 0
            while True:
                ident += 1
                events = [boss(self.seq + i + 1) for i in range(3)]
                self.seq += 3
                sent = time.perf_counter()
                await ws.send(envelope(ident, events))
                reply = json.loads(await ws.recv())
                if reply.get("type") != "ack" or reply.get("accepted") != 3:
                    self.errors.append(json.dumps(reply))
                self.samples.append((self.phase, time.perf_counter() - sent))
                await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        assert self._task is not None
        if self._task.done():
            if not self._task.cancelled():
                self._task.result()  # raise what killed it
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def check(self) -> None:
        """Still alive, no refusal, no ack slower than the sanity bound."""
        assert self._task is not None
        if self._task.done():
            self._task.result()
        assert self.errors == [], self.errors[:3]
        assert self.samples, "the honest client got no ack at all"
        worst = max(latency for _, latency in self.samples[-50:])
        assert worst < SANITY_LATENCY_S, f"honest ack took {worst:.2f}s"

    def summary(self) -> str:
        out = []
        for phase in dict.fromkeys(p for p, _ in self.samples):
            values = sorted(v for p, v in self.samples if p == phase)
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            out.append(
                f"{phase}: n={len(values)} p50={1000 * statistics.median(values):.1f}ms "
                f"p99={1000 * p99:.1f}ms max={1000 * values[-1]:.1f}ms"
            )
        return "; ".join(out)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def hostile_db(postgres_server: Any) -> AsyncIterator[str]:
    async with fresh_database(str(postgres_server.dsn), "hostile") as dsn:
        yield dsn


class Suite:
    def __init__(self, gateway: Gateway, aggregator: Aggregator, honest: Honest) -> None:
        self.gateway, self.aggregator, self.honest = gateway, aggregator, honest
        self.dsn = aggregator.settings.postgres_dsn
        self.log_path: Path | None = None
        self.dlq_start = 0
        self.rss: dict[str, int] = {}


@pytest.fixture(scope="module")
async def suite(
    nats_server: Any, hostile_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    nats_url = admin_url(str(nats_server.url))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log_path = tmp_path_factory.mktemp("hostile-logs") / "gateway.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    gateway = Gateway(gateway_settings(nats_url, hello_timeout_s=1.0, publish_timeout_s=5.0))
    await gateway.start()
    import nats

    from gameplay_analytics.runtime import jetstream

    nc = await nats.connect(nats_url)
    await jetstream.ensure_stream(nc.jetstream(), jetstream.StreamSettings.model_validate({}))
    start = await next_seq(nc.jetstream())
    await nc.close()
    aggregator = Aggregator(settings(nats_url, hostile_db), start_sequence=start)
    await aggregator.start()
    consuming = asyncio.create_task(aggregator.run())
    honest = Honest(gateway.url)
    state = Suite(gateway, aggregator, honest)
    state.log_path, state.dlq_start = log_path, start
    state.rss["start"] = psutil.Process().memory_info().rss
    honest.start()
    await asyncio.sleep(2.0)  # baseline latency
    honest.phase = "during"
    try:
        yield state
    finally:
        with contextlib.suppress(Exception):
            await honest.stop()
        aggregator.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consuming, 30)
        await aggregator.close()
        await gateway.drain_and_stop()
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- authentication -------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(player: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": player, "exp": now + 3600}
    return {
        "forged": jwt.encode(claims, "not-the-secret-not-the-secret-000000", algorithm="HS256"),
        "expired": token_for(player, ttl_s=-30),
        "alg_none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + ".",
        "alg_none_signed": _b64({"alg": "none"}) + "." + _b64(claims) + ".c2ln",
        "hs512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "no_exp": jwt.encode({"sub": player}, SECRET, algorithm="HS256"),
        "sub_not_uuid": jwt.encode({"sub": "admin", "exp": now + 60}, SECRET, algorithm="HS256"),
        "garbage": "a.b.c",
        "empty": "",
        "huge": "x" * 8192,
    }


@pytest.mark.parametrize("kind", list(_bad_tokens(str(uuid.uuid4()))))
async def test_bad_tokens_are_unauthorized_4401(suite: Suite, kind: str) -> None:
    player = str(uuid.uuid4())
    async with connect(suite.gateway.url) as ws:
        await ws.send(json.dumps({
            "type": "hello", "token": _bad_tokens(player)[kind],
            "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
        }))  # fmt: skip
        error, code = await refused(ws)
    assert (error["type"], error["code"], code) == ("error", "unauthorized", 4401), kind
    assert player not in json.dumps(error)  # refusals never repeat the player id
    suite.honest.check()


async def test_no_hello_times_out_4408_and_analytics_first_is_4401(suite: Suite) -> None:
    async with connect(suite.gateway.url) as ws:
        error, code = await refused(ws)
    assert (error["code"], code) == ("unauthorized", 4408)
    async with connect(suite.gateway.url) as ws:
        await ws.send(envelope(7, [boss(1)]))
        error, code = await refused(ws)
    assert (error["code"], error["id"], code) == ("unauthorized", 7, 4401)
    suite.honest.check()


async def test_token_replayed_on_a_second_connection_is_served_and_stored_once(
    suite: Suite,
) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    token = token_for(player)
    async with connect(suite.gateway.url) as first, connect(suite.gateway.url) as second:
        assert (await hello(first, token=token, guid=guid))["type"] == "welcome"
        assert (await hello(second, token=token, guid=guid))["type"] == "welcome"
        same = [boss(seq) for seq in (1, 2, 3)]
        for ws in (first, second):
            await ws.send(envelope(1, same))
            assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "accepted": 3}
    rows = await _stored(suite, guid, expect=3)
    assert sorted(rows) == [1, 2, 3]  # once each, though sent (and acked) twice
    suite.honest.check()


async def _stored(suite: Suite, guid: str, *, expect: int, within: float = 15.0) -> list[int]:
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(suite.dsn)
    try:
        while True:
            seqs = [
                r["seq"]
                for r in await conn.fetch(
                    "SELECT seq FROM analytics_events WHERE client_guid = $1::uuid", guid
                )
            ]
            if len(seqs) >= expect or time.monotonic() > deadline:
                await asyncio.sleep(0.5)  # a late duplicate would show up now
                return [
                    r["seq"]
                    for r in await conn.fetch(
                        "SELECT seq FROM analytics_events WHERE client_guid = $1::uuid", guid
                    )
                ]
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


# -- size and volume ------------------------------------------------------------------------


async def test_frame_just_over_the_limit_closes_1009(suite: Suite) -> None:
    async with connect(suite.gateway.url, max_size=None) as ws:
        assert (await hello(ws))["type"] == "welcome"
        head = '{"type":"input","pad":"'
        at_limit = head + "x" * (FRAME_LIMIT - len(head) - 2) + '"}'
        assert len(at_limit) == FRAME_LIMIT
        await ws.send(at_limit)  # exactly at the limit: read, ignored (`input`)
        await ws.send(envelope(1, [boss(1)]))
        assert json.loads(await ws.recv())["type"] == "ack"
        await ws.send(at_limit[:-2] + 'x"}')  # one byte over
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    suite.honest.check()


async def test_ten_thousand_events_in_one_frame(suite: Suite) -> None:
    """10,000 events cannot fit 256 KiB: 1009. 501 small ones fit: bad_request, session on."""
    compact = [
        {"seq": i, "name": "death", "ts": 1, "props": {"tier": "boss"}} for i in range(10_000)
    ]
    async with connect(suite.gateway.url, max_size=None) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(envelope(1, compact))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    async with connect(suite.gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        await ws.send(envelope(2, compact[:501]))
        reply = json.loads(await ws.recv())
        assert (reply["code"], reply["id"]) == ("bad_request", 2)
        await ws.send(envelope(3, [boss(1)]))
        assert json.loads(await ws.recv())["type"] == "ack"
    suite.honest.check()


async def test_a_thousand_frames_per_second(suite: Suite) -> None:
    async with connect(suite.gateway.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        started = time.monotonic()
        for i in range(1000):
            await ws.send(envelope(i + 1, [boss(i + 1)]))
            if i % 100 == 99:
                await asyncio.sleep(max(0.0, started + (i + 1) / 1000 - time.monotonic()))
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(1000)]
    kinds = {}
    for reply in replies:
        key = reply.get("code", reply["type"])
        kinds[key] = kinds.get(key, 0) + 1
    assert set(kinds) <= {"ack", "rate_limited"}, kinds
    assert 5 <= kinds.get("ack", 0) <= 40, kinds  # ~10 Hz plus the burst
    print(f"[hostile] 1000 frames/s: {kinds}")
    suite.honest.check()


async def test_flood_without_reading_replies_stays_bounded(suite: Suite) -> None:
    """A client that floods and never reads: the replies it does not read must not pile up
    without bound in the gateway (each refused frame queues an `error` frame for it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.connect(("127.0.0.1", suite.gateway.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    writer.write(_masked(json.dumps({
        "type": "hello", "token": token_for(str(uuid.uuid4())),
        "client_guid": str(uuid.uuid4()), "schema": "1.0.0",
    }).encode()))  # fmt: skip
    frame = _masked(b'{"type":"analytics","id":1,"schema":"1.0.0","events":"x"}')
    before = psutil.Process().memory_info().rss
    cut_off = False
    try:
        for _ in range(40):
            writer.write(frame * 2_500)  # 100,000 refused frames in total, none read back
            await writer.drain()
            await asyncio.sleep(0)
    except (ConnectionResetError, BrokenPipeError):
        cut_off = True  # the gateway aborted a client that does not read its replies
    await asyncio.sleep(1.0)
    queued = max((s._outbox.qsize() for s in list(suite.gateway._sessions)), default=0)
    grown = psutil.Process().memory_info().rss - before
    writer.close()
    print(
        f"[hostile] flood, no reads: largest session outbox {queued} frames, RSS +{grown >> 20} MiB"
    )
    suite.honest.check()
    assert queued < 10_000, f"{queued} unsent replies queued for one client that never reads"
    assert cut_off, "a client that never reads its replies is disconnected"


def _masked(payload: bytes) -> bytes:
    """One client text frame (masked, as clients must)."""
    mask = b"\x01\x02\x03\x04"
    size = len(payload)
    head = bytes([0x81])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# -- connection-holding attacks -------------------------------------------------------------


async def test_slowloris_half_open_connections(suite: Suite) -> None:
    """200 sockets dribbling an HTTP upgrade, 200 upgraded ones that never say hello: the
    gateway keeps serving, then closes them (open timeout, hello timeout)."""
    port = suite.gateway.port
    dribblers = []
    for _ in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        dribblers.append((reader, writer))
    silent = [await connect(suite.gateway.url) for _ in range(200)]
    for second in range(3):
        for _, writer in dribblers:
            writer.write(f"X-Slow-{second}: 1\r\n".encode())
        await asyncio.sleep(1.0)
        suite.honest.check()
    # The silent ones were told `unauthorized` and closed with 4408 after hello_timeout_s.
    codes = []
    for ws in silent:
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                await asyncio.wait_for(ws.recv(), 3)
        codes.append(ws.close_code)
    assert set(codes) == {4408}, set(codes)
    # The dribblers are cut by the opening-handshake timeout (websockets' open_timeout, 10 s).
    deadline = time.monotonic() + 15
    open_left = len(dribblers)
    while open_left and time.monotonic() < deadline:
        open_left = sum(not r.at_eof() for r, _ in dribblers)
        for reader, _ in dribblers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(1024), 0.001)
        await asyncio.sleep(0.5)
    for _, writer in dribblers:
        writer.close()
    print(f"[hostile] slowloris: {len(dribblers) - open_left}/200 dribblers cut by the gateway")
    assert open_left == 0, f"{open_left} half-open handshakes still held after 15 s"
    suite.honest.check()


async def test_thousands_of_idle_connections(suite: Suite) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(IDLE_CONNECTIONS, (soft - 500) // 2)  # both ends live in this process
    rss_before = psutil.Process().memory_info().rss
    sessions_before = suite.gateway.sessions
    token = token_for(str(uuid.uuid4()))
    hello_frame = json.dumps({"type": "hello", "token": token,
                              "client_guid": str(uuid.uuid4()), "schema": "1.0.0"})  # fmt: skip
    opened: list[ClientConnection] = []
    started = time.monotonic()

    async def one() -> None:
        ws = await connect(suite.gateway.url, open_timeout=30, ping_interval=None)
        await ws.send(hello_frame)
        json.loads(await ws.recv())
        opened.append(ws)

    try:
        for chunk in range(0, count, 250):
            await asyncio.gather(*(one() for _ in range(min(250, count - chunk))))
        took = time.monotonic() - started
        rss_open = psutil.Process().memory_info().rss
        assert suite.gateway.sessions - sessions_before == count
        await asyncio.sleep(2.0)  # idle, while the honest client plays
        suite.honest.check()
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    per = (rss_open - rss_before) / max(1, count)
    print(
        f"[hostile] {count} idle sessions opened in {took:.1f}s; "
        f"RSS +{(rss_open - rss_before) >> 20} MiB (~{per / 1024:.0f} KiB per connection, "
        "client and gateway ends together)"
    )
    suite.rss["idle"] = rss_open


# -- privacy: what a hostile client can push to rest ----------------------------------------


async def test_free_text_in_refused_fields_does_not_reach_the_dlq(suite: Suite) -> None:
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    nasty = f"{CHAT_CANARY} {player} 10.20.30.40"
    events = [
        {"seq": 1, "name": "engage_enemy", "ts": 1, "props": {"enemy_id": "o", "tier": nasty}},
        {"seq": 2, "name": nasty, "ts": 1, "props": {}},
        {"seq": 3, "name": "chat_message", "ts": 1, "props": {"length": 3, nasty: 1}},
    ]
    async with connect(suite.gateway.url) as ws:
        assert (await hello(ws, player, guid=guid))["type"] == "welcome"
        await ws.send(envelope(1, events))
        ack = json.loads(await ws.recv())
    assert ack["type"] == "ack" and len(ack["rejected"]) == 3
    report = await privacy_scan.scan_all(
        dsn=None, warehouse_root=None, nats_url=suite.gateway.settings.nats_url,
        log_paths=[], player_uuids=[player], canaries=[CHAT_CANARY],
        stream_start_seq=suite.dlq_start, only_guids={guid},
    )  # fmt: skip
    assert report.findings == [], "\n".join(map(str, report.findings))


async def test_privacy_scan_after_hostile_suite(suite: Suite) -> None:
    """Last: hostile clients plant chat text and an age field; nothing of it (and no player
    UUID, no IP) may be at rest in Postgres, the DLQ or the gateway's log."""
    player, guid = str(uuid.uuid4()), str(uuid.uuid4())
    planted = [
        {"seq": 1, "name": "chat_message", "ts": 1, "props": {"length": 5, "text": CHAT_CANARY}},
        {"seq": 2, "name": "session_start", "ts": 1, "props": {"age": 17, "birth_date": "2010"}},
        {"seq": 3, "name": "session_crash", "ts": 1, "props": {"reason": CHAT_CANARY}},
        boss(4),
    ]
    async with connect(suite.gateway.url) as ws:
        assert (await hello(ws, player, guid=guid))["type"] == "welcome"
        await ws.send(envelope(1, planted))
        ack = json.loads(await ws.recv())
    assert ack["accepted"] == 1  # only the boss encounter
    await _stored(suite, guid, expect=1)
    await suite.honest.stop()
    await asyncio.sleep(1.0)  # the honest client's last envelopes reach Postgres
    print(f"[hostile] honest client ack latency — {suite.honest.summary()}")
    rss_end = psutil.Process().memory_info().rss
    print(
        f"[hostile] RSS: start {suite.rss['start'] >> 20} MiB, with idle connections "
        f"{suite.rss.get('idle', 0) >> 20} MiB, end {rss_end >> 20} MiB"
    )
    assert rss_end - suite.rss["start"] < 1024 << 20, "memory grew by more than 1 GiB"
    assert suite.log_path is not None
    report = await privacy_scan.scan_all(
        dsn=suite.dsn, warehouse_root=None, nats_url=suite.gateway.settings.nats_url,
        log_paths=[suite.log_path], player_uuids=_players, canaries=[CHAT_CANARY],
        stream_start_seq=suite.dlq_start,
        server_ports={suite.gateway.port, suite.gateway.metrics_port},
    )  # fmt: skip
    print(report.line(f"hostile ({len(_players)} players)"))
    assert report.dlq_messages > 0, "the planted events should have been dead-lettered"
    assert report.findings == [], "\n".join(map(str, report.findings[:20]))
