"""`gameplay-analytics demo` fills country: a small demo run through the real stack builds its
GeoIP database, its players send their test addresses as `X-Forwarded-For` through a gateway
that trusts the loopback, every stored row carries the country of its player's network, the
printed report shows it, and the insights slice by region over the demo's warm store."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gameplay_analytics.insights import warehouse
from gameplay_analytics.loadgen.geo import TEST_NETWORKS
from gameplay_analytics.loadgen.players import REGIONS
from gameplay_analytics.local.demo import run_demo

pytestmark = pytest.mark.integration
pytest.importorskip("mmdb_writer", reason="the demo's GeoIP database needs the local extra")

SECRET = "demo-country-secret-at-least-32-bytes-long"


async def test_a_small_demo_fills_country(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = await run_demo(
        data_dir=tmp_path / "demo", players=16, seconds=5.0, jwt_secret=SECRET, out=out
    )
    printed = out.getvalue()
    assert outcome.ok, printed
    assert outcome.stored == outcome.warm_rows > 0

    root = str(tmp_path / "demo" / "warehouse")
    rows = await asyncio.to_thread(
        warehouse.query,
        root,
        "SELECT region, country, geo_region, count(*) FROM analytics_events GROUP BY 1, 2, 3",
    )
    places = {(n.region, n.country, n.subdivision) for n in TEST_NETWORKS}
    assert sum(r[3] for r in rows) == outcome.stored
    for region, country, subdivision, _ in rows:
        assert (region, country, subdivision) in places, rows  # never empty, never elsewhere
    assert len({r[1] for r in rows}) >= 2

    # The demo exports its sessions too: once each, with the country the gateway found.
    ((sessions, distinct, located),) = await asyncio.to_thread(
        warehouse.query, root,
        "SELECT count(*), count(DISTINCT session_id), count(country) FROM analytics_sessions",
    )  # fmt: skip
    assert sessions == distinct == located > 0

    table = printed.split("where players connect from", 1)[1].split("\n\n", 1)[0]
    for _, country, _, _ in rows:
        assert f" {country} " in table, table

    argv = [sys.executable, "-m", "gameplay_analytics.cli", "insights", "sessions", "--store",
            "warm", "--root", root, "--by", "region", "--format", "json"]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    sliced = json.loads(done.stdout)["rows"]
    assert sliced and {r["region"] for r in sliced} <= set(REGIONS), sliced
