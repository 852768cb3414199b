"""The schema gate's structural privacy rules: each refusal fixture is refused for its reason,
each counterexample passes, and the shipped schemas pass."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.contract.privacy_gate import pattern_excludes_whitespace, privacy_problems

SHIPPED = json.loads((schemas_dir() / "analytics/v1/event.schema.json").read_text())
CASES: list[dict[str, Any]] = json.loads(
    (schemas_dir() / "fixtures/privacy-refusals/props.json").read_text()
)["cases"]


def test_the_shipped_schemas_pass() -> None:
    assert privacy_problems("1.0.0", SHIPPED) == []


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['event']}.{c['prop']}:{json.dumps(c['schema'])}" for c in CASES]
)
def test_each_fixture_is_refused_for_its_reason(case: dict[str, Any]) -> None:
    schema = copy.deepcopy(SHIPPED)
    schema["definitions"][case["event"]]["properties"][case["prop"]] = case["schema"]
    problems = privacy_problems("9.0.0", schema)
    if case["refused"] is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert problems[0].startswith(f"9.0.0: {case['event']}.props.{case['prop']}")
        assert f": {case['refused']}" in problems[0]


@pytest.mark.parametrize(
    ("pattern", "safe"),
    [
        ("^[a-z]+$", True),
        ("^[!-~]{1,8}$", True),
        ("^(?:[A-Z]{2}|[0-9]{3})\\Z", True),
        ("^[ -~]+$", False),
        ("^[^\\S]+$", False),
        ("^a\\tb$", False),
        ("^a+", False),
        ("^[", False),
    ],
)
def test_pattern_analysis(pattern: str, safe: bool) -> None:
    assert pattern_excludes_whitespace(pattern) is safe
