"""The compiled validator: exact per-event rejections, and never disagreeing with the schema."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.contract.registry import SchemaRegistry
from gameplay_analytics.contract.validator import EventValidator

REGISTRY = SchemaRegistry.from_released()
VALIDATOR = REGISTRY.validator("1.0.0")
assert VALIDATOR is not None
TS = 1759320000123


def event(seq: int, name: str, **props: Any) -> dict[str, Any]:
    return {"seq": seq, "name": name, "ts": TS + seq, "props": props}


def test_a_valid_frame_is_accepted_whole_with_typed_props() -> None:
    events = [event(i, "engage_enemy", enemy_id="orc_7", tier="elite") for i in range(20)]
    result = VALIDATOR.validate(orjson.dumps(events))
    assert result.rejected == []
    assert [e.seq for e in result.accepted] == list(range(20))
    assert result.accepted[0].event_name == "engage_enemy"
    assert result.accepted[0].props.tier == "elite"


def test_one_bad_event_is_rejected_alone_with_the_protocol_detail() -> None:
    events = [event(17, "xp_gain", amount=5, source="quest"),
              event(18, "engage_enemy", enemy_id="orc_7", tier="mythic")]  # fmt: skip
    result = VALIDATOR.validate(orjson.dumps(events))
    assert [e.seq for e in result.accepted] == [17]
    [rejection] = result.rejected
    assert (rejection.seq, rejection.code) == (18, "invalid_event")
    assert rejection.detail == "props.tier: 'mythic' is not one of ['normal', 'elite', 'boss']"


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"seq": 1, "name": "launch_nukes", "ts": TS, "props": {}}, "name"),
        ({"name": "death", "ts": TS, "props": {"tier": "boss"}}, "seq"),
        (event(1, "chat_message", length=3, text="hey"), "text"),
        (event(1, "emote_played", emote_id="free text here"), "emote_id"),
        (event(1, "xp_gain", amount=True, source="q"), "amount"),
        ("not an object", "object"),
    ],
)
def test_rejections_name_the_field(bad: Any, fragment: str) -> None:
    result = VALIDATOR.validate(orjson.dumps([bad, event(2, "death", tier="boss")]))
    assert [e.seq for e in result.accepted] == [2]
    assert fragment in result.rejected[0].detail


def test_unicode_and_escapes_take_the_exact_path_and_are_judged_right() -> None:
    ok = VALIDATOR.validate(b'[{"seq":1,"name":"death","ts":5,"props":{"tier":"bo\\u0073s"}}]')
    assert len(ok.accepted) == 1
    spaced = (
        b'[ {"seq": 1, "name": "loot_drop", "ts": 5, "props": {"item_id": "a", "rarity": "epic"}} ]'
    )
    assert len(VALIDATOR.validate(spaced).accepted) == 1
    bad = VALIDATOR.validate(
        '[{"seq":1,"name":"emote_played","ts":5,"props":{"emote_id":"wävé"}}]'.encode()
    )
    assert bad.rejected and not bad.accepted


def test_too_many_events_is_a_bad_request() -> None:
    strict = EventValidator(REGISTRY.document("1.0.0") or {}, max_events=3)
    with pytest.raises(ProtocolError) as caught:
        strict.validate(orjson.dumps([event(i, "death", tier="boss") for i in range(4)]))
    assert caught.value.code is ErrorCode.BAD_REQUEST and "at most 3" in caught.value.detail


def test_events_that_are_not_a_list_are_a_bad_request() -> None:
    with pytest.raises(ProtocolError):
        VALIDATOR.validate(b'{"seq": 1}')


def test_unknown_versions_have_no_validator() -> None:
    assert REGISTRY.validator("9.0.0") is None
    assert REGISTRY.restricted_to(["1.0.0"]).validator("1.0.0") is VALIDATOR


# Property: the fast path never disagrees with the reference (fastjsonschema) validator.
_ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9_.:/-]{1,64}\Z"), st.text(max_size=70))
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False), _ids,
    st.sampled_from(["normal", "elite", "boss", "win", "epic", "logout"]),
)  # fmt: skip
_names = st.sampled_from([*sorted(VALIDATOR.event_types), "nope"])


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(_names)
    known = [*sorted(VALIDATOR.props_fields.get(name, frozenset())), "extra"]
    props = draw(st.dictionaries(st.sampled_from(known), _scalars, max_size=4))
    doc: dict[str, Any] = {"seq": draw(st.integers(-2, 2**40)), "name": name,
                           "ts": draw(st.integers(0, 2**45)), "props": props}  # fmt: skip
    for key in draw(st.sets(st.sampled_from(["seq", "ts", "props"]), max_size=1)):
        del doc[key]
    return doc


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_events(), min_size=1, max_size=5))
def test_fast_path_agrees_with_the_reference_validator(events: list[dict[str, Any]]) -> None:
    result = VALIDATOR.validate(orjson.dumps(events))
    expected = [VALIDATOR.validate_event(e) is None for e in events]
    accepted_seqs = [e.seq for e in result.accepted]
    assert len(result.accepted) == sum(expected), (events, result)
    assert accepted_seqs == [e["seq"] for e, ok in zip(events, expected, strict=True) if ok]
