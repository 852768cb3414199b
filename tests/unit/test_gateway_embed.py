"""AnalyticsChannel: which frames of a game connection analytics takes, and how it ends."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from gameplay_analytics.runtime.gateway.embed import AnalyticsChannel, frame_type


async def test_analytics_takes_its_frames_and_leaves_the_game_its_own() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    channel = AnalyticsChannel(send)
    assert channel.offer(b'{"type":"hello","token":""}')
    assert channel.offer('{"type":"analytics","id":1}')
    assert channel.offer('{"type":"telemetry","rtt_ms":3}')
    for game_frame in ('{"type":"input"}', '{"move":1}', "not json", "[1,2]", b"\xff"):
        assert not channel.offer(game_frame), game_frame
    assert await channel.recv() == b'{"type":"hello","token":""}'
    await channel.send(b'{"type":"ack","id":1,"accepted":0}', text=True)
    assert sent == ['{"type":"ack","id":1,"accepted":0}']


async def test_a_closed_channel_ends_the_session_not_the_game() -> None:
    async def send(text: str) -> None:
        raise AssertionError("nothing is sent after close")

    channel = AnalyticsChannel(send)
    await channel.close(4401, "token expired")
    assert channel.closed_with == (4401, "token expired")
    assert channel.offer('{"type":"analytics","id":2}')  # still analytics', dropped
    for _ in range(2):
        with pytest.raises(ConnectionClosed):
            await channel.recv()
    with pytest.raises(ConnectionClosed):
        await channel.send(b"{}", text=True)


def test_frame_type_reads_only_the_type() -> None:
    assert frame_type('{"events":[1,2,3],"type":"analytics"}') == "analytics"
    assert frame_type("{}") == ""
    assert frame_type('{"type": 5}') is None
