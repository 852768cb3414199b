"""Whether a SchemaVersion may be accepted: the compatibility gate against its own major.

Pure: the operator passes the candidate and the accepted versions of the namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameplay_analytics.contract import compat
from gameplay_analytics.contract.semver import SemVer

__all__ = ["review"]


def review(
    version: str,
    document: Mapping[str, Any] | None,
    accepted: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Problems that stop `version` from being accepted; empty means accept.

    `accepted` holds the other accepted versions of the namespace; only those of the same
    major are compared (a new major may change anything). The document must carry its own
    version, so that what gateways validate against says what it is.
    """
    if document is None:
        return ["no schema document: set spec.schema or spec.schemaFrom"]
    declared = str(document.get("version", ""))
    if declared != version:
        return [f"the document says version {declared or '(none)'}, the resource {version}"]
    if not isinstance(document.get("definitions"), Mapping):
        return ["the document has no `definitions` (one JSON Schema per event name)"]
    major = SemVer.parse(version).major
    same_major = {
        v: doc for v, doc in accepted.items() if v != version and SemVer.parse(v).major == major
    }
    problems = compat.gate(same_major, document)
    newer = sorted(SemVer.parse(v) for v in same_major if SemVer.parse(v) > SemVer.parse(version))
    if newer:
        # The gate compares with older versions only; a version slotted in below a newer
        # accepted one must not make that newer one a breaking step from it.
        problems += [
            f"{p} (against the newer {newer[0]})"
            for p in compat.gate({version: document}, same_major[str(newer[0])])
        ]
    return problems
