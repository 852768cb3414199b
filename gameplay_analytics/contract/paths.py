"""Where the shipped schemas live, in a checkout, an installed wheel or a container.

`GAMEPLAY_ANALYTICS_SCHEMAS_DIR` wins; otherwise the `schemas/` folder beside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["schemas_dir"]

_ENV = "GAMEPLAY_ANALYTICS_SCHEMAS_DIR"


def schemas_dir() -> Path:
    """The folder holding `analytics/`, `fixtures/` and `sampling.yml`."""
    override = os.environ.get(_ENV)
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "schemas", here.parent / "_schemas"):
        if (candidate / "analytics").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no schemas/ folder found beside the package; set {_ENV} to the folder that holds "
        "analytics/ and sampling.yml"
    )
