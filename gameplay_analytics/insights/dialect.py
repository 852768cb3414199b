"""The two SQL dialects the metrics run on: Postgres (hot store) and DuckDB (warm store).

The metric templates are written once in the SQL both accept; only reading a JSON prop
differs (jsonb in Postgres, JSON text in Parquet), so that is all a dialect supplies.
"""

from __future__ import annotations

import enum
import re
from typing import Final

__all__ = ["Dialect", "render"]

_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


class Dialect(enum.Enum):
    POSTGRES = "postgres"
    DUCKDB = "duckdb"

    def prop(self, name: str) -> str:
        """A text prop of the `props` column (NULL when absent)."""
        if not _NAME.match(name):
            raise ValueError(f"not a prop name: {name!r}")
        if self is Dialect.POSTGRES:
            return f"(props->>'{name}')"
        return f"json_extract_string(props, '$.{name}')"

    def number(self, name: str) -> str:
        """A numeric prop, as double precision (NULL when absent)."""
        return f"CAST({self.prop(name)} AS DOUBLE PRECISION)"


class _Props:
    """`{p[outcome]}` in a template: the dialect's text prop."""

    def __init__(self, dialect: Dialect, *, numeric: bool) -> None:
        self._dialect, self._numeric = dialect, numeric

    def __getitem__(self, name: str) -> str:
        return self._dialect.number(name) if self._numeric else self._dialect.prop(name)


def render(template: str, dialect: Dialect, **fragments: str) -> str:
    """A template with `{p[name]}` (text prop), `{n[name]}` (numeric prop) and the named
    SQL `fragments` filled in for `dialect`."""
    return template.format(
        p=_Props(dialect, numeric=False), n=_Props(dialect, numeric=True), **fragments
    )
