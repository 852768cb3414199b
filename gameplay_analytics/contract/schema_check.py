"""The schema gate CI runs (`gameplay-analytics schema check`): fixtures, privacy, compatibility.

Every fixture is checked by the reference validator and the compiled fast path, which must
agree; every event needs a valid and an invalid fixture; the working schema of each major
must be compatible with the released versions as its version number claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from gameplay_analytics.contract.compat import gate
from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.contract.privacy_gate import privacy_problems
from gameplay_analytics.contract.registry import released_schemas, working_schemas
from gameplay_analytics.contract.semver import SemVer
from gameplay_analytics.contract.taxonomy import EVENTS
from gameplay_analytics.contract.validator import EventValidator

__all__ = ["SchemaReport", "check_schemas"]


@dataclass
class SchemaReport:
    checked_fixtures: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_schemas(root: Path | None = None) -> SchemaReport:
    """Run the whole gate over a schemas folder (default: the shipped one)."""
    root = root or schemas_dir()
    report = SchemaReport()
    released = released_schemas(root)
    for version, document in {**released, **working_schemas(root)}.items():
        _check_privacy(version, document, report)
        _check_taxonomy(version, document, report)
        _check_fixtures(version, document, root / "fixtures", report)
    for version, document in working_schemas(root).items():
        report.problems += [f"{version}: {p}" for p in gate(released, document)]
    return report


def _check_privacy(version: str, document: Mapping[str, Any], report: SchemaReport) -> None:
    """The structural rules of `privacy_gate`, whatever the version bump, plus the closed
    props and the consent class every event must declare."""
    report.problems += privacy_problems(version, document)
    for name, props_schema in document.get("definitions", {}).items():
        if props_schema.get("additionalProperties", True) is not False:
            report.problems.append(f"{version}: {name}.props: must set additionalProperties: false")
        consent = props_schema.get("x-consent")
        spec = EVENTS.get(name)
        if spec is not None and consent != spec.consent:
            report.problems.append(
                f"{version}: {name}: x-consent is {consent!r}, taxonomy says {spec.consent!r}"
            )


def _check_taxonomy(version: str, document: Mapping[str, Any], report: SchemaReport) -> None:
    names = set(document.get("definitions", {}))
    for missing in sorted(set(EVENTS) - names):
        report.problems.append(f"{version}: {missing}: in the taxonomy but not in the schema")
    for extra in sorted(names - set(EVENTS)):
        report.problems.append(f"{version}: {extra}: in the schema but not in the taxonomy")


def _check_fixtures(
    version: str, document: Mapping[str, Any], folder: Path, report: SchemaReport
) -> None:
    """Own-version fixtures must behave as labelled; valid fixtures of older minors of the
    same major must stay valid (that is what a minor bump promises)."""
    this = SemVer.parse(version)
    try:
        validator = EventValidator(document)
    except Exception as err:  # any compile failure of a hand-edited schema is a gate failure
        report.problems.append(f"{version}: the schema does not compile: {err}")
        return
    own = folder / version
    if not own.is_dir():
        report.problems.append(f"{version}: no fixtures folder {own}")
    covered: dict[str, set[bool]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            fixture_version = SemVer.parse(sub.name)
        except ValueError:
            continue
        if fixture_version.major != this.major or fixture_version > this:
            continue
        is_own = fixture_version == this
        for path in sorted(sub.glob("*.json")):
            doc = json.loads(path.read_text())
            for expect_valid, key in ((True, "valid"), (False, "invalid")):
                if not is_own and not expect_valid:
                    continue  # a newer minor may accept what an older one refused
                for item in doc.get(key, []):
                    event = item["event"] if not expect_valid else item
                    report.checked_fixtures += 1
                    problem = _judge(validator, event, expect_valid=expect_valid)
                    if problem:
                        report.problems.append(f"{version}: {path.name} [{key}]: {problem}")
                    if is_own and doc.get("event"):
                        covered.setdefault(doc["event"], set()).add(expect_valid)
    if own.is_dir():
        for name in sorted(document.get("definitions", {})):
            if covered.get(name) != {True, False}:
                report.problems.append(
                    f"{version}: {name}: needs at least one valid and one invalid fixture"
                )


def _judge(validator: EventValidator, event: Any, *, expect_valid: bool) -> str | None:
    reference = validator.validate_event(event) if isinstance(event, dict) else "not an object"
    fast = validator.validate(msgspec.json.encode([event]))
    fast_valid = bool(fast.accepted)
    if (reference is None) != fast_valid:
        return f"validators disagree on {event!r}: reference={reference!r}, fast={fast_valid}"
    if expect_valid and reference is not None:
        return f"should be valid: {reference}"
    if not expect_valid and reference is None:
        return f"should be invalid: {event!r}"
    return None
