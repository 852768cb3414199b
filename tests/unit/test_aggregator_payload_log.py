"""The aggregator's payload sample: what a log line may hold, decided from prepared rows."""

from __future__ import annotations

import json
import logging
import random

import pytest

from gameplay_analytics.runtime import logs
from gameplay_analytics.runtime.aggregator import Enricher
from gameplay_analytics.runtime.aggregator.payload_log import (
    PayloadSampler,
    redact_props,
    redacted_payload,
)
from tests.unit.test_aggregator_enrich import GUID, PLAYER, TS, enricher, ev, message

__all__ = ["enricher"]

SESSION = "5d0c3c9e-1f7a-4c7e-9a51-3f0b8f5c2d11"
IP = "81.2.69.142"


def test_props_keep_numbers_and_tokens_and_lose_text_and_identifiers() -> None:
    props = {
        "amount": 12.5, "crit": True, "none": None, "tier": "boss", "item": "sword_12",
        "note": "gg wp from Alice", "peer": IP, "v6": "2001:db8::7", "who": PLAYER,
        "nested": {"list": ["ok", "two words", 3]}, "a key with spaces": 1,
    }  # fmt: skip
    assert redact_props(props) == {
        "amount": 12.5, "crit": True, "none": None, "tier": "boss", "item": "sword_12",
        "note": "<text>", "peer": "<ip>", "v6": "<ip>", "who": "<text>",
        "nested": {"list": ["ok", "<text>", 3]}, "<text>": 1,
    }  # fmt: skip


def test_a_payload_holds_pseudonyms_not_identifiers(enricher: Enricher) -> None:
    data = message(ev(1), ev(2, "engage_enemy", enemy_id="orc_7", tier="boss"), session_id=SESSION)
    prepared = enricher.prepare(data, stream_seq=9, now_ms=TS + 1000)
    doc = redacted_payload(prepared)
    text = json.dumps(doc)
    for raw in (PLAYER, GUID, SESSION, IP):
        assert raw not in text
    assert doc["analytics_player_id"] == prepared.rows[0][0]
    assert doc["events_stored"] == 2 and doc["stream_seq"] == 9
    assert doc["events"][1]["props"] == {"enemy_id": "orc_7", "tier": "boss"}


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 50)])
def test_the_sampler_logs_its_rate(
    enricher: Enricher, rate: float, expected: int, caplog: pytest.LogCaptureFixture
) -> None:
    prepared = [enricher.prepare(message(ev(k)), stream_seq=k, now_ms=TS) for k in range(50)]
    caplog.set_level(logging.INFO, logger="gameplay_analytics.runtime.aggregator.payload_log")
    assert PayloadSampler(rate).offer(prepared) == expected
    assert len(caplog.records) == expected


def test_a_quarter_is_about_a_quarter(enricher: Enricher) -> None:
    prepared = [enricher.prepare(message(ev(1)), stream_seq=1, now_ms=TS)] * 2000
    logged = PayloadSampler(0.25, rng=random.Random(3)).offer(prepared)
    assert 400 < logged < 600


def test_the_json_line_of_a_sample_is_clean(enricher: Enricher) -> None:
    prepared = enricher.prepare(message(ev(1), session_id=SESSION), stream_seq=1, now_ms=TS)
    record = logging.LogRecord("p", logging.INFO, __file__, 1, "payload sample", None, None)
    record.payload = redacted_payload(prepared)
    line = logs.JsonFormatter("aggregator").format(record)
    assert json.loads(line)["payload"]["events"][0]["name"] == "xp_gain"
    assert all(raw not in line for raw in (PLAYER, GUID, SESSION, IP))
