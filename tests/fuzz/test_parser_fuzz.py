"""Property-based fuzzing of the frame parser and the event validator.

Whatever a client sends, `parse_client_frame` returns a frame or raises `ProtocolError` with a
protocol code, and `EventValidator.validate` returns accepted/rejected events or raises
`ProtocolError(bad_request)`. No other exception may escape: in the gateway, one would end the
session with 1011 instead of an `error` frame. And the fast path never accepts an event the
reference JSON Schema validator refuses (differential check).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError, RejectCode
from gameplay_analytics.contract.frames import AnalyticsFrame, parse_client_frame
from gameplay_analytics.contract.registry import SchemaRegistry

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip

_VALIDATOR = SchemaRegistry.from_released().validator("1.0.0")
assert _VALIDATOR is not None
_EVENTS = sorted(_VALIDATOR.event_types)
_PROPS = sorted({p for names in _VALIDATOR.props_fields.values() for p in names})
_CODES = {str(c) for c in ErrorCode}

# -- strategies -----------------------------------------------------------------------------

_edge_text = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8")),
    st.text(st.characters(categories=["Cs", "Co", "Cn", "Cf", "Zl", "Zp", "Mn"])),  # surrogates …
    st.sampled_from(["", "\x00", "\ufeff", "\u202e", "é", "e\u0301", "💥" * 50, "\ud800",
                     "a" * 5_000, "1.0.0\n", "null"]),
)  # fmt: skip
_numbers = st.one_of(
    st.integers(),  # unbounded: far beyond int64
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 1.0, 1e308, 5e-324, -1, 0, 2**53 + 1]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _edge_text)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(_edge_text, inner, max_size=6),
    max_leaves=25,
)


def _dumps(value: Any) -> bytes:
    """JSON text, NaN/Infinity tokens and lone surrogate escapes included (not valid JSON)."""
    return json.dumps(value, allow_nan=True).encode()


def _event(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "seq": draw(st.one_of(st.integers(min_value=0, max_value=2**40), _json)),
        "name": draw(st.one_of(st.sampled_from(_EVENTS), _edge_text, _json)),
        "ts": draw(st.one_of(st.integers(min_value=0, max_value=2**45), _json)),
        "props": draw(
            st.one_of(
                st.dictionaries(st.sampled_from(_PROPS) | _edge_text, _json, max_size=5),
                st.dictionaries(
                    st.sampled_from(_PROPS),
                    st.sampled_from(["boss", "elite", "orc_7", 1, 0, 3.5, True]),
                    max_size=4,
                ),
                _json,
            )
        ),
    }
    for key in draw(st.sets(st.sampled_from(list(event)))):  # drop fields too
        event.pop(key)
    return event


events_strategy = st.composite(lambda draw: _event(draw))()


@st.composite
def frames_strategy(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["hello", "analytics", "telemetry", "input"]) | _edge_text)
    frame: dict[str, Any] = {"type": kind}
    frame.update(
        {
            "token": draw(st.one_of(st.just("e30.e30.sig"), _json)),
            "client_guid": draw(st.one_of(st.just(str(uuid.uuid4())), _json)),
            "schema": draw(st.one_of(st.just("1.0.0"), _json)),
            "build": draw(_json),
            "consent": draw(st.one_of(st.just({"analytics": True}), _json)),
            "id": draw(st.one_of(st.integers(), _json)),
            "events": draw(st.one_of(st.lists(events_strategy, max_size=5), _json)),
            "rtt_ms": draw(_json),
            "snapshot_bytes": draw(_json),
        }
    )
    for key in draw(st.sets(st.sampled_from([k for k in frame if k != "type"]))):
        frame.pop(key)
    return frame


# -- properties -----------------------------------------------------------------------------


def _parse_or_refuse(data: bytes) -> object | None:
    try:
        return parse_client_frame(data)
    except ProtocolError as err:
        assert str(err.code) in _CODES
        assert err.code == ErrorCode.BAD_REQUEST
        assert isinstance(err.detail, str) and err.detail
        return None


def _validate_or_refuse(data: bytes) -> None:
    try:
        result = _VALIDATOR.validate(msgspec.Raw(data))
    except ProtocolError as err:
        assert err.code == ErrorCode.BAD_REQUEST and err.detail
        return
    for rejection in result.rejected:
        assert rejection.code == RejectCode.INVALID_EVENT and rejection.detail
    for event in result.accepted:  # the fast path agrees with the reference validator
        doc = msgspec.to_builtins(event)
        doc.setdefault("props", {})
        assert _VALIDATOR.validate_event(doc) is None, doc


@FUZZ
@given(st.binary(max_size=2048))
@example(b"\xef\xbb\xbf{}")
@example(b'{"type":"hello","token":"\xff\xfe"}')
def test_arbitrary_bytes_never_escape(data: bytes) -> None:
    _parse_or_refuse(data)
    _validate_or_refuse(data)


@FUZZ
@given(_json)
def test_arbitrary_json_never_escapes(value: Any) -> None:
    _parse_or_refuse(_dumps(value))
    _validate_or_refuse(_dumps(value))


@FUZZ
@given(frames_strategy())
def test_frame_shaped_input_parses_or_is_bad_request(frame: dict[str, Any]) -> None:
    parsed = _parse_or_refuse(_dumps(frame))
    if isinstance(parsed, AnalyticsFrame):  # the gateway's next step, on the raw events
        _validate_or_refuse(bytes(parsed.events))


@FUZZ
@given(st.lists(events_strategy, max_size=8))
def test_event_lists_validate_or_are_bad_request(events: list[dict[str, Any]]) -> None:
    _validate_or_refuse(_dumps(events))


@FUZZ
@given(st.integers(min_value=0, max_value=4), st.sampled_from(_EVENTS), _json)
def test_wrong_type_in_every_field(position: int, name: str, value: Any) -> None:
    """A valid-looking event with one field (or one prop) replaced by an arbitrary value."""
    event: dict[str, Any] = {"seq": 1, "name": name, "ts": 1_700_000_000_000, "props": {}}
    props = sorted(_VALIDATOR.props_fields[name])
    keys = ["seq", "name", "ts", "props", *(f"props.{p}" for p in props)]
    key = keys[position % len(keys)]
    if key.startswith("props."):
        event["props"] = {p: "x" for p in props} | {key[6:]: value}
    else:
        event[key] = value
    _validate_or_refuse(_dumps([event]))
    frame = {"type": "analytics", "id": 1, "schema": "1.0.0", "events": [event]}
    _parse_or_refuse(_dumps(frame))


# Depths a 256 KiB frame can carry: far past any recursion limit.
_DEEP = [64, 1_000, 20_000, 100_000]


@pytest.mark.parametrize("depth", _DEEP)
@pytest.mark.parametrize("where", ["top", "events", "props", "consent"])
def test_deep_nesting_is_bad_request_or_rejected(depth: int, where: str) -> None:
    arrays, objects = b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth
    guid = str(uuid.uuid4()).encode()
    frame = {
        "top": arrays,
        "events": b'{"type":"analytics","id":1,"schema":"1.0.0","events":' + arrays + b"}",
        "props": b'{"type":"analytics","id":1,"schema":"1.0.0","events":[{"seq":1,'
        b'"name":"death","ts":1,"props":{"tier":"boss","x":' + objects + b"}}]}",
        "consent": b'{"type":"hello","token":"t","client_guid":"' + guid + b'","schema":"1.0.0",'
        b'"consent":' + objects + b"}",
    }[where]
    parsed = _parse_or_refuse(frame)
    if isinstance(parsed, AnalyticsFrame):
        _validate_or_refuse(bytes(parsed.events))
    _validate_or_refuse(arrays)


@pytest.mark.parametrize(
    "number",
    [b"9" * 400, b"1e400", b"-1e400", b"1e300", b"18446744073709551616", b"9223372036854775808",
     b"-0", b"1.0", b"0.1e1", b"1E+2", b"NaN", b"Infinity"],
)  # fmt: skip
@pytest.mark.parametrize("field", ["id", "seq", "ts", "amount", "rtt_ms"])
def test_huge_and_odd_numbers(number: bytes, field: str) -> None:
    values = {"id": b"1", "seq": b"1", "ts": b"1", "amount": b"1", "rtt_ms": b"1"}
    values[field] = number
    event = (
        b'{"seq":' + values["seq"] + b',"name":"xp_gain","ts":' + values["ts"]
        + b',"props":{"amount":' + values["amount"] + b',"source":"quest"}}'
    )  # fmt: skip
    frame = b'{"type":"analytics","id":' + values["id"] + b',"schema":"1.0.0","events":['
    parsed = _parse_or_refuse(frame + event + b"]}")
    if isinstance(parsed, AnalyticsFrame):
        _validate_or_refuse(bytes(parsed.events))
    _parse_or_refuse(b'{"type":"telemetry","rtt_ms":' + values["rtt_ms"] + b"}")


@pytest.mark.parametrize("field", ["seq", "ts"])
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_accepted_seq_and_ts_fit_storage(field: str, value: int) -> None:
    event = {"seq": 1, "name": "death", "ts": 1, "props": {"tier": "boss"}, field: value}
    result = _VALIDATOR.validate(_dumps([event]))
    assert [e.seq for e in result.accepted if e.seq >= 2**63 or e.ts >= 2**63] == []
