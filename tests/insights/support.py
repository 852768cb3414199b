"""Helpers shared by the insights tests (no tests in here): the CLI as a subprocess, the rule
sets the ground truth is computed under, and both stores filled as the pipeline fills them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from gameplay_analytics import sampling
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage import hot, warm
from tests.insights import script

__all__ = ["ALL_KEPT", "DEFAULTS", "ROOT_ENV", "START", "cli", "fill_stores"]

ROOT_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GAMEPLAY_ANALYTICS_")}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", *args],
        capture_output=True, text=True, timeout=120, env=ROOT_ENV, cwd=cwd,
    )  # fmt: skip


# Everyone activates on January 1st, so even D30 stays inside one salt month; the month
# boundary has its own test.
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ALL_KEPT = sampling.compile(
    sampling.parse_rules(
        {
            "classes": {
                name: {"rate": 1.0}
                for name in ("combat", "commodity", "social", "heartbeat", "milestone")
            },
        },
        base=sampling.load_default_rules(),
    )
)
DEFAULTS = sampling.compile(sampling.load_default_rules())


async def fill_stores(
    dsn: str, root: Path, players: list[script.Player], rules: sampling.CompiledRules
) -> None:
    """Both stores as the pipeline fills them: events and onboarding profiles in Postgres
    (one `write_batch`, as the aggregator commits), then the days exported to Parquet."""
    rows = script.stored_rows(players, rules)
    conn = await asyncpg.connect(dsn)
    try:
        await storage.migrate(conn)
        # A partition per day, so the export copies the days (it moves default-partition rows).
        days = sorted({row[storage.EVENT_COLUMNS.index("event_day")] for row in rows})
        await storage.ensure_partitions(conn, today=days[0], ahead_days=(days[-1] - days[0]).days)
        await hot.write_batch(conn, rows, (), script.profiles(players, rules))
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        await warm.export_closed_days(
            pool, warm.WarmStore(str(root)), now=START + dt.timedelta(days=90)
        )
    finally:
        await pool.close()
