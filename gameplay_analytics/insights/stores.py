"""Where the metrics run: the hot store (Postgres) or the warm store (DuckDB over Parquet).

Each store runs one rendered SQL statement with positional parameters and returns plain
rows; every failure to reach it, or a statement it refuses, is an `InsightsError` with one
line a person can act on, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
from collections.abc import Sequence
from typing import Any, Protocol

from gameplay_analytics.insights.dialect import Dialect

__all__ = ["CONNECT_TIMEOUT_S", "HotStore", "InsightsError", "Store", "WarmStore"]

CONNECT_TIMEOUT_S = 5.0
"""How long the hot store may take to accept a connection before it counts as unreachable."""


class InsightsError(Exception):
    """A bad argument, an unreachable store or a refused statement; the message is one line."""


class Store(Protocol):
    name: str
    dialect: Dialect

    def fetch(self, sql: str, args: Sequence[object]) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class HotStore:
    """Postgres through asyncpg, one short-lived connection per statement (CLI and page)."""

    name = "hot"
    dialect = Dialect.POSTGRES

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def fetch(self, sql: str, args: Sequence[object]) -> list[dict[str, Any]]:
        return asyncio.run(self._fetch(sql, args))

    def close(self) -> None:
        pass

    async def _fetch(self, sql: str, args: Sequence[object]) -> list[dict[str, Any]]:
        import asyncpg

        try:
            conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as err:
            raise InsightsError(f"hot store unreachable ({_one_line(err)})") from None
        try:
            records = await conn.fetch(sql, *args)
        except asyncpg.PostgresError as err:
            raise InsightsError(f"query failed: {_one_line(err)}") from None
        finally:
            await conn.close()
        return [{key: _plain(value) for key, value in record.items()} for record in records]


class WarmStore:
    """DuckDB over the warm store's Parquet days (a local path or s3://bucket/prefix)."""

    name = "warm"
    dialect = Dialect.DUCKDB

    def __init__(self, root: str, *, endpoint: str | None = None) -> None:
        from gameplay_analytics.insights import warehouse

        self.root = root
        if "://" not in root and not os.path.isdir(root):
            raise InsightsError(f"warm store unreachable: {root} is not a directory")
        try:
            self._con = warehouse.connect(root, endpoint=endpoint)
        except Exception as err:  # pyarrow and DuckDB raise many kinds; all mean the same here
            raise InsightsError(f"warm store unreachable ({_one_line(err)})") from None

    def fetch(self, sql: str, args: Sequence[object]) -> list[dict[str, Any]]:
        import duckdb

        try:
            cursor = self._con.execute(sql, list(args))
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
        except duckdb.Error as err:
            raise InsightsError(f"query failed: {_one_line(err)}") from None
        return [dict(zip(columns, map(_plain, row), strict=True)) for row in rows]

    def close(self) -> None:
        self._con.close()


def _plain(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
