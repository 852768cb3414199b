"""The schema registry: every released event schema version, and a validator for each.

Released versions live in `schemas/analytics/released/VERSION.schema.json` and are never
edited; the gateway accepts any of them (or the set the operator publishes to NATS KV).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gameplay_analytics.contract import fingerprint
from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.contract.semver import SemVer
from gameplay_analytics.contract.validator import EventValidator

__all__ = [
    "SchemaRegistry",
    "load_schema",
    "packaged_schema_hash",
    "released_schemas",
    "working_schemas",
]


def load_schema(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    SemVer.parse(str(document.get("version", "")))  # a schema without a version is refused
    return document


def released_schemas(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """{version: schema} of the released versions, oldest first."""
    folder = (root or schemas_dir()) / "analytics" / "released"
    documents = {str(d["version"]): d for d in map(load_schema, folder.glob("*.schema.json"))}
    return dict(sorted(documents.items(), key=lambda item: SemVer.parse(item[0])))


def working_schemas(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """{version: schema} of the working schema of each major (`analytics/vN/`)."""
    folder = (root or schemas_dir()) / "analytics"
    documents = [load_schema(p) for p in sorted(folder.glob("v*/event.schema.json"))]
    return {str(d["version"]): d for d in documents}


@functools.cache
def packaged_schema_hash(version: str) -> str | None:
    """The hash of the shipped document for `version` (released first, else the working one),
    or None when this installation has no such document (then a client sends no hash)."""
    try:
        document = released_schemas().get(version) or working_schemas().get(version)
    except (OSError, ValueError):
        return None
    return fingerprint.schema_hash(document) if document is not None else None


class SchemaRegistry:
    """Accepted schema versions and their compiled validators (compiled on first use)."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]], *, max_events: int = 500):
        self._documents = dict(documents)
        self._max_events = max_events
        self._validators: dict[str, EventValidator] = {}
        self._hashes: dict[str, str] = {}

    @classmethod
    def from_released(cls, root: Path | None = None, *, max_events: int = 500) -> SchemaRegistry:
        return cls(released_schemas(root), max_events=max_events)

    @property
    def versions(self) -> list[str]:
        return sorted(self._documents, key=SemVer.parse)

    def document(self, version: str) -> Mapping[str, Any] | None:
        return self._documents.get(version)

    def schema_hash(self, version: str) -> str | None:
        """The fingerprint of an accepted version's document (`contract/fingerprint.py`), the
        value a client built from the same document sends as `hello.schema_hash`."""
        found = self._hashes.get(version)
        if found is None and version in self._documents:
            found = fingerprint.schema_hash(self._documents[version])
            self._hashes[version] = found
        return found

    def validator(self, version: str) -> EventValidator | None:
        """The validator of an accepted version, or None when the version is not accepted."""
        found = self._validators.get(version)
        if found is None and version in self._documents:
            found = EventValidator(self._documents[version], max_events=self._max_events)
            self._validators[version] = found
        return found

    def restricted_to(self, versions: Iterable[str]) -> SchemaRegistry:
        """A registry accepting only `versions` (those it knows), sharing compiled validators."""
        keep = set(versions)
        narrowed = SchemaRegistry(
            {v: d for v, d in self._documents.items() if v in keep}, max_events=self._max_events
        )
        narrowed._validators = {v: e for v, e in self._validators.items() if v in keep}
        return narrowed
