"""The Metabase views (`insights views`) on the real hot store and the export feed
(`insights export`): each equals the insights CLI's JSON on the same data."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
import pytest

from gameplay_analytics.insights import definitions, mart
from tests.conftest import fresh_database
from tests.insights import script
from tests.insights.support import ALL_KEPT, START, cli, fill_stores


@pytest.fixture(scope="module")
def mart_players() -> list[script.Player]:
    return script.population(30, start=START, days=1)


@pytest.fixture
async def hot(
    postgres_dsn: str, tmp_path: Path, mart_players: list[script.Player]
) -> AsyncIterator[str]:
    async with fresh_database(postgres_dsn, "mart") as dsn:
        await fill_stores(dsn, tmp_path / "wh", mart_players, ALL_KEPT)
        yield dsn


def _json(*args: str) -> dict[str, Any]:
    done = cli("insights", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


async def _view(dsn: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_views_equal_the_cli(hot: str) -> None:
    done = cli("insights", "views", "--dsn", hot)
    assert done.returncode == 0, done.stderr
    # Twice: a refresh replaces the views.
    assert cli("insights", "views", "--dsn", hot).returncode == 0
    names = {r["table_name"] for r in await _view(
        hot, "SELECT table_name FROM information_schema.views WHERE table_schema = 'analytics_mart'"
    )}  # fmt: skip
    assert names == set(definitions.METRICS)

    # Combat by class, as Metabase sums it: ratios of sums, per tier.
    rows = await _view(hot, """
        SELECT dim_class, tier, SUM(encounters) AS encounters, SUM(wins) AS wins
        FROM analytics_mart.combat GROUP BY dim_class, tier""")  # fmt: skip
    assert rows
    viewed = {(r["dim_class"], r["tier"]): (float(r["encounters"]), float(r["wins"]))
              for r in rows}  # fmt: skip
    out = _json("combat", "--store", "hot", "--dsn", hot, "--by", "class")
    assert {(r["class"], r["tier"]): (r["encounters"], r["wins"]) for r in out["rows"]} == viewed

    # The funnel (profile-based on the hot store), default window, whole store.
    (f,) = await _view(
        hot,
        """
        SELECT SUM(first_session) AS first_session, SUM(first_combat) AS first_combat,
               SUM(first_combat_win) AS first_combat_win FROM analytics_mart.funnel""",
    )
    steps = {r["step"]: r["players"] for r in _json("funnel", "--dsn", hot)["rows"]}
    assert steps == {k: pytest.approx(float(v)) for k, v in f.items()}
    assert steps["first_session"] == 30

    # XP velocity by playstyle.
    rows = await _view(hot, """
        SELECT dim_playstyle, SUM(xp) / SUM(hours) AS xp_per_hour
        FROM analytics_mart.xp GROUP BY dim_playstyle""")  # fmt: skip
    out = _json("xp", "--dsn", hot, "--by", "playstyle")
    assert {r["playstyle"]: r["xp_per_hour"] for r in out["rows"]} == {
        r["dim_playstyle"]: pytest.approx(float(r["xp_per_hour"])) for r in rows
    }


def test_views_refuse_an_unreachable_store() -> None:
    done = cli("insights", "views", "--dsn", "postgresql://nobody@127.0.0.1:1/x")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unreachable" in done.stderr


def test_the_view_sql_has_no_parameters_left() -> None:
    for metric in mart.VIEWS:
        sql = mart.view_sql(metric)
        assert "$" not in sql and "dim_playstyle" in sql and "dim_region" in sql


def test_export_feed(warm_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "feed"
    done = cli("insights", "export", "--store", "warm", "--root", str(warm_root),
               "--to", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["metric"] for e in manifest["metrics"]] == list(definitions.METRICS)
    for entry in manifest["metrics"]:
        metric = entry["metric"]
        assert entry["params"]["by"] == ["class", "region", "playstyle"]
        for kind, meta in entry["files"].items():
            data = (out / meta["path"]).read_bytes()
            assert meta["sha256"] == hashlib.sha256(data).hexdigest(), kind
            assert meta["bytes"] == len(data)
        # The CSV contract: the CLI's CSV, columns as the manifest says, one line per row.
        text = (out / f"{metric}.csv").read_text()
        cli_csv = cli("insights", metric, "--store", "warm", "--root", str(warm_root),
                      "--by", "class,region,playstyle", "--format", "csv")  # fmt: skip
        assert text == cli_csv.stdout
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
        assert reader.fieldnames == entry["columns"]
        assert entry["rows"] == len(rows) > 0
        assert entry["columns"][:3] == ["class", "region", "playstyle"]
        table = pq.read_table(out / f"{metric}.parquet")
        assert table.column_names == entry["columns"] and table.num_rows == len(rows)
    # The CSV's figures are the JSON's.
    combat = _json("combat", "--store", "warm", "--root", str(warm_root),
                   "--by", "class,region,playstyle")  # fmt: skip
    sums: dict[str, float] = defaultdict(float)
    for row in csv.DictReader(io.StringIO((out / "combat.csv").read_text())):
        sums["wins"] += float(row["wins"])
    assert sums["wins"] == sum(r["wins"] for r in combat["rows"])


def test_export_refuses_an_unwritable_target(warm_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = cli("insights", "export", "--store", "warm", "--root", str(warm_root),
               "--to", str(blocker / "feed"))  # fmt: skip
    assert done.returncode == 2 and "cannot write the feed" in done.stderr


DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "metabase"
FILTERS = {"class": "dim_class", "region": "dim_region", "playstyle": "dim_playstyle"}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _bind(query: str, values: dict[str, str]) -> str:
    """A Metabase native query as Metabase runs it: an optional `[[…]]` clause kept (its
    `{{tag}}` a string literal) when its filter has a value, dropped when not."""

    def clause(match: re.Match[str]) -> str:
        (tag,) = re.findall(r"\{\{(\w+)\}\}", match.group(1))
        return match.group(1).replace(f"{{{{{tag}}}}}", f"'{values[tag]}'") if tag in values else ""

    return re.sub(r"\[\[(.*?)\]\]", clause, query)


def test_dashboard_shape() -> None:
    boards = _dashboards()
    assert set(boards) == {"session-funnel", "combat-success", "xp-velocity"}
    for name, board in boards.items():
        assert {p["slug"] for p in board["parameters"]} == set(FILTERS), name
        ids = {p["id"] for p in board["parameters"]}
        assert board["cards"], name
        for item in board["cards"]:
            query = item["card"]["dataset_query"]["native"]
            tags = query["template-tags"]
            assert set(tags) == set(FILTERS) and all(t["type"] == "text" for t in tags.values())
            for slug, column in FILTERS.items():
                assert f"[[AND {column} = {{{{{slug}}}}}]]" in query["query"], (name, slug)
            assert {m["parameter_id"] for m in item["parameter_mappings"]} == ids
            assert {m["target"][1][1] for m in item["parameter_mappings"]} == set(FILTERS)
            views = set(re.findall(r"analytics_mart\.(\w+)", query["query"]))
            assert views and views <= set(mart.VIEWS), (name, views)
            sqlglot = pytest.importorskip("sqlglot", reason="sqlglot is in the test extra")
            sqlglot.parse_one(_bind(query["query"], {}), read="postgres")


async def test_dashboards_run_on_the_views(hot: str) -> None:
    assert cli("insights", "views", "--dsn", hot).returncode == 0
    (some,) = await _view(hot, "SELECT dim_class, dim_region, dim_playstyle "
                               "FROM analytics_mart.combat LIMIT 1")  # fmt: skip
    picked = {"class": some["dim_class"], "region": some["dim_region"],
              "playstyle": some["dim_playstyle"]}  # fmt: skip
    for board in _dashboards().values():
        for item in board["cards"]:
            query = item["card"]["dataset_query"]["native"]["query"]
            assert await _view(hot, _bind(query, {})), item["card"]["name"]
            await _view(hot, _bind(query, picked))


@pytest.mark.usefixtures("aws_env")
def test_export_feed_to_s3(warm_root: Path, s3_endpoint: str) -> None:
    from gameplay_analytics.insights import core, feed
    from gameplay_analytics.insights.stores import WarmStore
    from gameplay_analytics.runtime.storage.objectstore import open_root

    where = open_root("s3://feed/daily", endpoint=s3_endpoint)
    store = WarmStore(str(warm_root))
    try:
        manifest = feed.export(store, core.Params(store="warm", by=("class",)), where)
    finally:
        store.close()
    with where.filesystem.open_input_stream(where.join(feed.MANIFEST)) as f:
        assert json.loads(f.read()) == manifest
    for entry in manifest["metrics"]:
        for meta in entry["files"].values():
            with where.filesystem.open_input_stream(where.join(meta["path"])) as f:
                assert hashlib.sha256(f.read()).hexdigest() == meta["sha256"]
