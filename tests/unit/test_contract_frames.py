"""Client frames: every malformed frame is a `bad_request` naming what is wrong."""

from __future__ import annotations

import uuid

import orjson
import pytest

from gameplay_analytics.contract import frames
from gameplay_analytics.contract.errors import ErrorCode, ProtocolError

GUID = "9b2f1c3e-0000-4000-8000-000000000001"


def test_hello_decodes_with_defaults() -> None:
    frame = frames.parse_client_frame(
        orjson.dumps({"type": "hello", "token": "t", "client_guid": GUID, "schema": "1.0.0"})
    )
    assert isinstance(frame, frames.Hello)
    assert frame.client_guid == uuid.UUID(GUID)
    assert frame.consent == {} and frame.build == ""


def test_analytics_keeps_events_raw_for_the_version_validator() -> None:
    body = {"type": "analytics", "id": 42, "schema": "1.0.0", "events": [{"seq": 1}]}
    frame = frames.parse_client_frame(orjson.dumps(body))
    assert isinstance(frame, frames.AnalyticsFrame)
    assert orjson.loads(bytes(frame.events)) == [{"seq": 1}]


def test_unknown_fields_are_ignored_for_newer_clients() -> None:
    frame = frames.parse_client_frame(b'{"type":"telemetry","rtt_ms":48,"gpu":"x"}')
    assert isinstance(frame, frames.Telemetry) and frame.rtt_ms == 48


def test_input_frames_parse_and_carry_nothing() -> None:
    assert isinstance(frames.parse_client_frame(b'{"type":"input","keys":[1,2]}'), frames.Input)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x00\xffgarbage", "not a JSON frame"),
        (b'{"type":"launch"}', "type"),
        (b'{"no_type":1}', "type"),
        (b"[1,2]", "object"),
        (b'{"type":"hello","client_guid":"' + GUID.encode() + b'","schema":"1.0.0"}', "token"),
        (b'{"type":"hello","token":"t","client_guid":"nope","schema":"1.0.0"}', "client_guid"),
        (b'{"type":"analytics","id":"42","schema":"1.0.0","events":[]}', "id"),
        (b'{"type":"telemetry","rtt_ms":-1}', "rtt_ms"),
    ],
)
def test_malformed_frames_are_bad_requests_naming_the_field(data: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        frames.parse_client_frame(data)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    assert fragment in caught.value.detail


def test_server_frames_encode_to_the_protocol_shape() -> None:
    ack = frames.Ack(id=42, accepted=19, rejected=[frames.Rejection(18, "invalid_event", "x")])
    assert orjson.loads(frames.encode(ack)) == {
        "type": "ack", "id": 42, "accepted": 19,
        "rejected": [{"seq": 18, "code": "invalid_event", "detail": "x"}],
    }  # fmt: skip
    error = frames.Error(code="backpressure", detail="queue full", id=7, retry_after_ms=500)
    assert orjson.loads(frames.encode(error))["retry_after_ms"] == 500
    assert "id" not in orjson.loads(frames.encode(frames.Error(code="bad_request", detail="d")))


def test_dlq_entries_never_keep_what_the_client_wrote() -> None:
    from gameplay_analytics.contract.messages import DlqEntry

    entry = DlqEntry(
        source="gateway", reason="invalid_event", at=1,
        detail="props.tier: 'call me at 555 0100' is not one of ['normal', 'elite', 'boss']",
        event={"seq": 7, "name": "engage_enemy", "ts": 5,
               "props": {"enemy_id": "10.0.0.1", "tier": "x y", "amount": 3, "Free Text": 1}},
    )  # fmt: skip
    assert entry.detail == "props.tier: <value> is not one of ['normal', 'elite', 'boss']"
    assert entry.event == {"seq": 7, "name": "engage_enemy", "ts": 5, "props": {
        "enemy_id": "<value>", "tier": "<value>", "amount": 3, "<value>": 1}}  # fmt: skip
    assert DlqEntry(source="g", reason="r", at=1, detail="must not contain {'text'} properties"
                    ).detail == "must not contain {<value>} properties"  # fmt: skip
