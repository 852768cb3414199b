"""The schema hash: a fingerprint of one event schema document, sent beside its version.

Two builds that claim the same `schema` version but were built from different documents
(an edited working schema, a stale client build) have different hashes, so drift shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_hash"]


def schema_hash(document: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the document's canonical JSON (sorted keys, no spaces, UTF-8).

    Canonical, not the file's bytes, so that reformatting a schema file changes nothing.
    Non-ASCII text stays UTF-8 (not `\\u` escapes), as most languages' JSON writers emit it.
    """
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
