"""`gameplay-analytics schema check`: passes on the shipped schemas, fails naming the field on
each kind of breaking change, and lets a minor bump add optional fields only."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gameplay_analytics.cli import main
from gameplay_analytics.contract.compat import check_compatibility
from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.contract.registry import SchemaRegistry

Schema = dict[str, Any]


def test_shipped_schemas_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "check"]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(schemas_dir(), tmp_path / "schemas")
    return tmp_path / "schemas"


def evolve(tree: Path, version: str, change: Callable[[Schema], None]) -> None:
    path = tree / "analytics" / "v1" / "event.schema.json"
    schema = json.loads(path.read_text())
    change(schema)
    schema["version"] = version
    path.write_text(json.dumps(schema, indent=2))
    fixtures = tree / "fixtures"
    if not (fixtures / version).exists():
        shutil.copytree(fixtures / "1.0.0", fixtures / version)


def props(schema: Schema, event: str) -> Schema:
    result: Schema = schema["definitions"][event]
    return result


BREAKING: dict[str, tuple[Callable[[Schema], None], str]] = {
    "remove a field": (
        lambda s: (props(s, "loot_drop")["properties"].pop("rarity"),
                   props(s, "loot_drop")["required"].remove("rarity")),
        "loot_drop.props.rarity: field removed",
    ),
    "retype a field": (
        lambda s: props(s, "xp_gain")["properties"]["amount"].update(type="string"),
        "xp_gain.props.amount: type changed",
    ),
    "make optional required": (
        lambda s: props(s, "session_start")["required"].append("character_class"),
        "session_start.props.character_class: optional field made required",
    ),
    "narrow an enum": (
        lambda s: props(s, "engage_enemy")["properties"]["tier"].update(enum=["normal", "boss"]),
        "engage_enemy.props.tier: enum narrowed",
    ),
    "remove an event": (
        lambda s: (s["definitions"].pop("emote_played"),
                   s.update(allOf=[c for c in s["allOf"] if "emote_played" not in str(c)])),
        "emote_played: event removed",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BREAKING))
def test_breaking_change_without_major_bump_fails_naming_the_field(
    kind: str, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, message = BREAKING[kind]
    evolve(tree, "1.1.0", change)
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    out = capsys.readouterr().out
    assert message in out and "needs a major bump" in out


def test_a_major_bump_may_break(tree: Path) -> None:
    def change(schema: Schema) -> None:  # a narrowed range: breaking, fixtures still pass
        props(schema, "damage_dealt")["properties"]["amount"]["maximum"] = 10**9

    path = tree / "analytics" / "v2"
    path.mkdir()
    schema = json.loads((tree / "analytics" / "v1" / "event.schema.json").read_text())
    change(schema)
    schema["version"] = "2.0.0"
    (path / "event.schema.json").write_text(json.dumps(schema))
    shutil.copytree(tree / "fixtures" / "1.0.0", tree / "fixtures" / "2.0.0")
    assert main(["schema", "check", "--schemas", str(tree)]) == 0


def add_optional(schema: Schema) -> None:
    props(schema, "loot_drop")["properties"]["source"] = {"type": "string", "maxLength": 16}


def test_a_minor_bump_may_add_optional_fields_and_both_versions_are_accepted(tree: Path) -> None:
    evolve(tree, "1.1.0", add_optional)
    assert main(["schema", "check", "--schemas", str(tree)]) == 0
    assert main(["schema", "release", "--schemas", str(tree)]) == 0
    registry = SchemaRegistry.from_released(tree)
    assert registry.versions == ["1.0.0", "1.1.0"]
    props_ = {"item_id": "a", "rarity": "epic", "source": "boss"}
    event = json.dumps([{"seq": 1, "name": "loot_drop", "ts": 5, "props": props_}]).encode()
    assert registry.validator("1.1.0").validate(event).accepted  # type: ignore[union-attr]
    assert registry.validator("1.0.0").validate(event).rejected  # type: ignore[union-attr]


def test_adding_in_a_patch_bump_fails(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evolve(tree, "1.0.1", add_optional)
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    assert "loot_drop.props.source: optional field added" in capsys.readouterr().out


def test_editing_a_released_version_in_place_fails(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evolve(tree, "1.0.0", add_optional)
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    assert "is released and may not change" in capsys.readouterr().out


def test_a_fixture_that_lies_fails(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / "fixtures" / "1.0.0" / "death.json"
    doc = json.loads(path.read_text())
    doc["valid"].append({"seq": 1, "name": "death", "ts": 5, "props": {"tier": "mythic"}})
    path.write_text(json.dumps(doc))
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    assert "death.json [valid]: should be valid" in capsys.readouterr().out


def test_a_missing_invalid_fixture_fails(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / "fixtures" / "1.0.0" / "death.json"
    doc = json.loads(path.read_text())
    doc["invalid"] = []
    path.write_text(json.dumps(doc))
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    assert "death: needs at least one valid and one invalid fixture" in capsys.readouterr().out


def test_a_personal_field_is_refused_whatever_the_bump(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evolve(tree, "2.0.0", lambda s: props(s, "session_start")["properties"].update(
        birth_date={"type": "string"}))  # fmt: skip
    assert main(["schema", "check", "--schemas", str(tree)]) == 1
    assert "session_start.props.birth_date: personal or free-text field" in capsys.readouterr().out


def test_compatibility_lists_widening_as_additive() -> None:
    old = json.loads((schemas_dir() / "analytics/v1/event.schema.json").read_text())
    new = copy.deepcopy(old)
    props(new, "loot_drop")["properties"]["rarity"]["enum"].append("mythic")
    [change] = check_compatibility(old, new)
    assert not change.breaking and change.field == "loot_drop.props.rarity"
