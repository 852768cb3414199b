"""The benches' raw load client (`bench/loadclient.py`) speaks the protocol to a real gateway:
its hand-framed handshake, hello and pre-encoded `analytics` frames are welcomed, validated and
acked in full; a refusal with `rate_limited` holds the client, which keeps the refused
envelope and the events tracked meanwhile and sends them later, as the SDK does."""

from __future__ import annotations

import time

import orjson
import pytest

from bench.loadclient import (
    EVENTS,
    RATE_HZ,
    Options,
    Stats,
    analytics_frame,
    connect_clients,
    run_clients,
)
from tests.integration.test_gateway_e2e import SECRET, running_gateway

pytestmark = pytest.mark.integration


def test_the_frame_is_the_json_of_the_dict_a_client_would_encode() -> None:
    frame = analytics_frame(7, 40)
    doc = orjson.loads(frame)
    assert orjson.dumps(doc) == frame
    assert doc["id"] == 7 and [e["seq"] for e in doc["events"]] == list(range(40, 40 + EVENTS))
    assert doc["events"][3] == {
        "seq": 43, "name": "engage_enemy", "ts": 1759320000123,
        "props": {"enemy_id": "orc_43", "tier": "boss"},
    }  # fmt: skip


async def test_every_frame_sent_is_acked_in_full(nats_url: str) -> None:
    stats = Stats()
    async with running_gateway(nats_url) as gw:
        clients = await connect_clients(gw.url, 3, secret=SECRET, options=Options(), stats=stats)
        await run_clients(clients, time.monotonic(), 0.6, tail_s=1.0)
    assert stats.failed == 0 and stats.closed == 0 and stats.refused == 0
    assert stats.frames >= 3 * 0.6 * RATE_HZ - 3
    assert stats.sent == stats.frames * EVENTS == stats.acked + stats.late  # boss: all kept
    assert len(stats.latencies) == stats.frames


async def test_a_refused_client_holds_resends_and_loses_nothing(nats_url: str) -> None:
    stats = Stats()
    async with running_gateway(nats_url, max_rate_hz=2) as gw:
        clients = await connect_clients(gw.url, 2, secret=SECRET, options=Options(), stats=stats)
        await run_clients(clients, time.monotonic(), 2.5, tail_s=1.0)
    assert stats.refused > 0 and stats.held > 0  # refused, then silent for retry_after × ~1.2
    assert stats.resent > 0  # the refused envelope went again, unchanged
    assert stats.frames * EVENTS < stats.sent  # the events tracked meanwhile: fuller envelopes
    assert stats.acked + stats.late == stats.sent - stats.refused_events
    # every event tracked was acked, or still waits in the buffer or for its resend
    assert stats.offered == stats.acked + stats.late + stats.unsent


async def test_clients_ignoring_the_hint_send_every_frame_and_resend_none(nats_url: str) -> None:
    stats = Stats()
    async with running_gateway(nats_url, max_rate_hz=2) as gw:
        options = Options(holds=False)
        clients = await connect_clients(gw.url, 2, secret=SECRET, options=options, stats=stats)
        await run_clients(clients, time.monotonic(), 1.5, tail_s=0.5)
    assert stats.refused > 0 and stats.held == stats.resent == stats.unsent == 0
    assert stats.offered == stats.sent == stats.frames * EVENTS
    assert stats.acked + stats.late == stats.sent - stats.refused * EVENTS


async def test_closed_loop_sends_the_next_frame_on_each_ack(nats_url: str) -> None:
    stats = Stats()
    options = Options(events=50, closed_loop=True)
    async with running_gateway(nats_url, max_rate_hz=100_000) as gw:
        clients = await connect_clients(gw.url, 2, secret=SECRET, options=options, stats=stats)
        await run_clients(clients, time.monotonic(), 0.5, tail_s=0.5)
    assert stats.frames > 2 * 0.5 * RATE_HZ  # not paced at 10 Hz: as fast as acks come
    assert stats.refused == 0 and stats.sent == stats.frames * 50 == stats.acked + stats.late
