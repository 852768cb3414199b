"""Writing the files generated from the definitions (analytics/trino/, analytics/dbt/)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write"]


def write(folder: Path, files: Mapping[str, str], root: Path = Path(".")) -> None:
    """Write each of `files` (by path relative to `folder`) under `root / folder`."""
    for name, text in files.items():
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path, file=sys.stderr)
