"""Cold-start files (the operator's ConfigMap copy of the KV values) and the breaker value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gameplay_analytics import sampling
from gameplay_analytics.runtime import config
from gameplay_analytics.sampling.breaker import BreakerConfig


def test_breaker_value_as_the_operator_writes_it() -> None:
    value = {"threshold": 0.7, "holdSeconds": 5, "recoverBelow": 0.2, "recoverHoldSeconds": 1}
    parsed = config.parse_breaker(json.dumps({**value, "step": 0.25, "floor": 0.1}).encode())
    assert parsed == BreakerConfig(
        threshold=0.7, hold_s=5.0, recover_below=0.2, recover_hold_s=1.0, step=0.25, floor=0.1
    )


@pytest.mark.parametrize("value", [b"[]", b'{"thresh": 0.5}', b'{"step": "x"}', b'{"step": 2}'])
def test_a_bad_breaker_value_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        config.parse_breaker(value)


def test_cold_start_reads_the_files_and_survives_bad_ones(tmp_path: Path) -> None:
    rules = sampling.compile(sampling.load_default_rules())
    wire = rules.to_wire()
    wire["events"]["chat_message"]["rate"] = 0.25
    (tmp_path / "sampling.json").write_text(json.dumps(wire))
    (tmp_path / "breaker.json").write_text('{"threshold": 0.9}')
    (tmp_path / "schemas.json").write_text("not json")
    base = config.default_config()
    live = config.cold_start(
        base,
        sampling_file=tmp_path / "sampling.json",
        schemas_file=tmp_path / "schemas.json",
        breaker_file=tmp_path / "breaker.json",
    )
    assert live.rules.rate_for("chat_message") == 0.25 != base.rules.rate_for("chat_message")
    assert live.breaker == BreakerConfig(threshold=0.9)
    assert live.registry.versions == base.registry.versions  # the bad file changed nothing
    missing = config.cold_start(base, sampling_file=tmp_path / "absent.json")
    assert missing.rules == base.rules
