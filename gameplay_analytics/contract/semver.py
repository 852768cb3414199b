"""Semantic versions of the event schema: parse, order, and classify a bump.

A minor version only adds optional fields; anything else is a major (DESIGN.md, Contract).
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["SemVer"]

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


class SemVer(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a MAJOR.MINOR.PATCH version")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bump_kind(self, newer: SemVer) -> str:
        """'major', 'minor', 'patch', 'same' or 'older' for the step from self to newer."""
        if newer == self:
            return "same"
        if newer < self:
            return "older"
        if newer.major != self.major:
            return "major"
        return "minor" if newer.minor != self.minor else "patch"
