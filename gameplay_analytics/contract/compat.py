"""Schema compatibility: what changed between two event schemas, and whether a bump allows it.

A minor version may only add optional fields (and new events or enum values, which old
events still satisfy); removing or retyping a field, making an optional field required, or
narrowing an enum or a range is breaking and needs a major bump. Each change names its field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gameplay_analytics.contract.semver import SemVer

__all__ = ["Change", "check_compatibility", "gate"]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two schemas; `field` is a path such as `loot_drop.props.rarity`."""

    field: str
    message: str
    breaking: bool

    def __str__(self) -> str:
        kind = "breaking" if self.breaking else "additive"
        return f"{self.field}: {self.message} ({kind})"


def check_compatibility(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from `old` to `new`, event by event and prop by prop."""
    changes: list[Change] = []
    old_events: Mapping[str, Any] = old.get("definitions", {})
    new_events: Mapping[str, Any] = new.get("definitions", {})
    for name in sorted(old_events.keys() - new_events.keys()):
        changes.append(Change(name, "event removed", breaking=True))
    for name in sorted(new_events.keys() - old_events.keys()):
        changes.append(Change(name, "event added", breaking=False))
    for name in sorted(old_events.keys() & new_events.keys()):
        changes.extend(_object_changes(f"{name}.props", old_events[name], new_events[name]))
    return changes


def gate(released: Mapping[str, Mapping[str, Any]], candidate: Mapping[str, Any]) -> list[str]:
    """Problems that stop `candidate` from shipping, given the released versions.

    The candidate is compared with the newest released version below it. An unchanged
    released version passes; an edited one must be bumped. A major bump may break anything.
    """
    version = SemVer.parse(str(candidate.get("version", "")))
    same = released.get(str(version))
    if same is not None:
        if _canonical(same) == _canonical(candidate):
            return []
        return [f"version {version} is released and may not change; bump the version"]
    older = sorted((SemVer.parse(v) for v in released if SemVer.parse(v) < version), reverse=True)
    if not older:
        return []
    base = older[0]
    kind = base.bump_kind(version)
    changes = check_compatibility(released[str(base)], candidate)
    if kind == "major":
        return []
    problems = [
        f"{change.field}: {change.message} — a breaking change needs a major bump "
        f"({base} → {_next_major(base)}), not {kind}"
        for change in changes
        if change.breaking
    ]
    if kind == "patch":
        problems += [
            f"{change.field}: {change.message} — adding needs a minor bump, not a patch"
            for change in changes
            if not change.breaking
        ]
    return problems


# -- private -----------------------------------------------------------------------------------


def _next_major(version: SemVer) -> str:
    return f"{version.major + 1}.0.0"


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


def _object_changes(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for prop in sorted(old_props.keys() - new_props.keys()):
        changes.append(Change(f"{path}.{prop}", "field removed", breaking=True))
    for prop in sorted(new_props.keys() - old_props.keys()):
        if prop in new_required:
            changes.append(Change(f"{path}.{prop}", "required field added", breaking=True))
        else:
            changes.append(Change(f"{path}.{prop}", "optional field added", breaking=False))
    for prop in sorted(old_props.keys() & new_props.keys()):
        field = f"{path}.{prop}"
        if prop in new_required and prop not in old_required:
            changes.append(Change(field, "optional field made required", breaking=True))
        elif prop in old_required and prop not in new_required:
            changes.append(Change(field, "required field made optional", breaking=True))
        changes.extend(_value_changes(field, old_props[prop], new_props[prop]))
    if old.get("additionalProperties", True) is False and new.get("additionalProperties", True) in (
        True,
        None,
    ):
        changes.append(Change(path, "now accepts unknown fields", breaking=True))
    return changes


def _value_changes(field: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    old_type, new_type = old.get("type"), new.get("type")
    if old_type != new_type:
        return [Change(field, f"type changed from {old_type} to {new_type}", breaking=True)]
    if "enum" in old or "enum" in new:
        old_enum, new_enum = set(old.get("enum", ())), set(new.get("enum", ()))
        if "enum" not in old:
            changes.append(Change(field, f"enum {sorted(new_enum)} imposed", breaking=True))
        elif "enum" not in new:
            changes.append(Change(field, "enum lifted (any value now allowed)", breaking=False))
        else:
            if removed := old_enum - new_enum:
                changes.append(
                    Change(field, f"enum narrowed: {sorted(removed)} removed", breaking=True)
                )
            if added := new_enum - old_enum:
                changes.append(
                    Change(field, f"enum widened: {sorted(added)} added", breaking=False)
                )
    for key in _LOWER_BOUNDS:
        if _tighter(old.get(key), new.get(key), lower=True):
            changes.append(Change(field, f"{key} raised to {new.get(key)}", breaking=True))
    for key in _UPPER_BOUNDS:
        if _tighter(old.get(key), new.get(key), lower=False):
            changes.append(Change(field, f"{key} lowered to {new.get(key)}", breaking=True))
    if old.get("pattern") != new.get("pattern") and new.get("pattern") is not None:
        changes.append(Change(field, f"pattern changed to {new['pattern']}", breaking=True))
    if old_type == "object":
        changes.extend(_object_changes(field, old, new))
    return changes


def _tighter(old: Any, new: Any, *, lower: bool) -> bool:
    if new is None:
        return False
    if old is None:
        return True
    return bool(new > old) if lower else bool(new < old)
