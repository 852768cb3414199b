"""Shared fixtures of the insights tests: scripted players and a warm store holding them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gameplay_analytics import sampling
from gameplay_analytics.runtime import storage
from gameplay_analytics.runtime.storage.warm import DATA_FILE, WARM_SCHEMA
from tests.insights import script

START = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def players() -> list[script.Player]:
    return script.population(24, start=START, days=1)


@pytest.fixture(scope="session")
def warm_root(tmp_path_factory: pytest.TempPathFactory, players: list[script.Player]) -> Path:
    """A warm store written the way the export lays it out: one Parquet file per day."""
    rules = sampling.compile(sampling.load_default_rules())
    rows = [dict(zip(storage.EVENT_COLUMNS, r, strict=True))
            for r in script.stored_rows(players, rules)]  # fmt: skip
    root = tmp_path_factory.mktemp("warm")
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for row in rows:
        row["client_guid"] = str(row["client_guid"])
        row["stored_at"] = row["received_at"]
        by_day.setdefault(row["event_day"], []).append(row)
    for day, day_rows in by_day.items():
        folder = root / "gameplay" / f"event_date={day.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(day_rows, schema=WARM_SCHEMA), folder / DATA_FILE)
    return root
