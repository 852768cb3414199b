"""The schema hash: a fingerprint of one event schema document, sent beside its version.

Two builds that claim the same `schema` version but were built from different documents
(an edited working schema, a stale client build) have different hashes, so drift shows.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import registry

__all__ = ["packaged_schema_hash", "schema_hash"]


def schema_hash(document: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the document's canonical JSON (sorted keys, no spaces, UTF-8).

    Canonical, not the file's bytes, so that reformatting a schema file changes nothing; the
    same form as `CompiledRules.version`, so one recipe serves every fingerprint.
    """
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@functools.cache
def packaged_schema_hash(version: str) -> str | None:
    """The hash of the shipped document for `version` (released first, else the working one),
    or None when this installation has no such document (then a client sends no hash)."""
    try:
        document = registry.released_schemas().get(version) or registry.working_schemas().get(
            version
        )
    except (OSError, ValueError):
        return None
    return schema_hash(document) if document is not None else None
