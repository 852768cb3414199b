"""Insights against ground truth: scripted players stored as the pipeline stores them, in the
real hot store (Postgres) and the real warm store (Parquet exported from it, read by DuckDB).

Exact at sampling rate 1.0; within the stated interval at the shipped default rates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gameplay_analytics.insights import core, stores
from tests.conftest import fresh_database
from tests.insights import script
from tests.insights.support import ALL_KEPT, DEFAULTS, START, fill_stores


@pytest.fixture(scope="module")
def exact_players() -> list[script.Player]:
    return script.population(40, start=START, days=1)


@pytest.fixture
async def exact(
    postgres_dsn: str, tmp_path: Path, exact_players: list[script.Player]
) -> AsyncIterator[dict[str, stores.Store]]:
    async with fresh_database(postgres_dsn, "ins") as dsn:
        await fill_stores(dsn, tmp_path / "wh", exact_players, ALL_KEPT)
        both: dict[str, stores.Store] = {
            "hot": stores.HotStore(dsn),
            "warm": stores.WarmStore(str(tmp_path / "wh")),
        }
        yield both
        for store in both.values():
            store.close()


def _compute(store: stores.Store, metric: str, **params: Any) -> list[dict[str, Any]]:
    return core.compute(metric, store, core.Params(store=store.name, **params)).rows


async def _run(store: stores.Store, metric: str, **params: Any) -> list[dict[str, Any]]:
    # The stores are synchronous (CLI, page): off the test's event loop.
    return await asyncio.to_thread(_compute, store, metric, **params)


@pytest.mark.parametrize("which", ["hot", "warm"])
async def test_exact_at_rate_one(
    exact: dict[str, stores.Store], exact_players: list[script.Player], which: str
) -> None:
    store = exact[which]
    for window in (7, 10):
        truth = script.true_funnel(exact_players, window)
        rows = await _run(store, "funnel", window=window)
        assert {r["step"]: r["players"] for r in rows} == truth
        assert rows[2]["rate"] == pytest.approx(truth["first_combat_win"] / len(exact_players))
        assert rows[2]["rate_low"] <= rows[2]["rate"] <= rows[2]["rate_high"]

    retention = {(r["activation_day"], r["day"]): (r["players"], r["retained"])
                 for r in await _run(store, "retention")}  # fmt: skip
    assert retention == script.true_retention(exact_players)

    sessions = await _run(store, "sessions")
    assert len(sessions) == 1
    assert sessions[0] == pytest.approx(
        {
            **script.true_sessions(exact_players),
            "total_minutes": sessions[0]["total_minutes"],
            "player_days": sessions[0]["player_days"],
        }
    )

    combat = {r["tier"]: r for r in await _run(store, "combat")}
    for tier, counts in script.true_combat(exact_players).items():
        row = combat[tier]
        assert (row["encounters"], row["wins"], row["losses"], row["flees"], row["deaths"]) == (
            counts["encounters"], counts["win"], counts["loss"], counts["flee"], counts["deaths"]
        )  # fmt: skip
        assert row["win_rate"] == pytest.approx(counts["win"] / counts["encounters"])

    (xp,) = await _run(store, "xp")
    assert xp["players"] == len(exact_players)
    assert xp["xp_per_hour"] == pytest.approx(script.true_xp_per_hour(exact_players))

    economy = {
        (r["flow"], r["item"]): (r["events"], r["amount"]) for r in await _run(store, "economy")
    }
    assert economy == script.true_economy(exact_players)


@pytest.mark.parametrize("which", ["hot", "warm"])
async def test_slices_partition_the_players(
    exact: dict[str, stores.Store], exact_players: list[script.Player], which: str
) -> None:
    rows = await _run(
        exact[which], "funnel", by=("class", "playstyle", "region", "platform", "build")
    )
    firsts = [r for r in rows if r["step"] == "first_session"]
    assert sum(r["players"] for r in firsts) == len(exact_players)
    for row in firsts:
        assert script.PLAYSTYLE_OF_KIND[row["class"]] == row["playstyle"]
        assert row["region"] in ("eu-west", "us-east") and row["build"] == "2025.10.1"
    by_class: dict[str, int] = {}
    for row in firsts:
        by_class[row["class"]] = by_class.get(row["class"], 0) + row["players"]
    assert by_class == {"warrior": 10, "ranger": 10, "cleric": 10, "rogue": 10}


@pytest.mark.parametrize("which", ["hot", "warm"])
async def test_an_empty_range_has_no_rows(exact: dict[str, stores.Store], which: str) -> None:
    day = dt.date(2024, 1, 1)
    for metric in ("funnel", "retention", "sessions", "combat", "xp", "economy"):
        assert await _run(exact[which], metric, date_from=day, date_to=day) == []


@pytest.fixture(scope="module")
def sampled_players() -> list[script.Player]:
    return script.population(800, start=START, seed=11, days=1)


async def test_within_the_interval_at_default_rates(
    postgres_dsn: str, tmp_path: Path, sampled_players: list[script.Player]
) -> None:
    async with fresh_database(postgres_dsn, "ins") as dsn:
        await fill_stores(dsn, tmp_path / "wh", sampled_players, DEFAULTS)
        for store in (stores.HotStore(dsn), stores.WarmStore(str(tmp_path / "wh"))):
            funnel = {r["step"]: r for r in await _run(store, "funnel")}
            truth = script.true_funnel(sampled_players, 7)
            for step, true_players in truth.items():
                rate = true_players / len(sampled_players)
                assert funnel[step]["rate_low"] <= rate <= funnel[step]["rate_high"], step
            # The steps nest in every slice: a win proves combat, so no slice shows more
            # winners than fighters (the weighted first_combat alone could dip below them).
            steps: dict[tuple[str, str], float] = {}
            for row in await _run(store, "funnel", by=("class", "playstyle")):
                steps[row["class"] + "/" + row["playstyle"], row["step"]] = row["players"]
            for (where, step), players in steps.items():
                if step == "first_combat_win":
                    assert players <= steps[where, "first_combat"], where
            combat = {r["tier"]: r for r in await _run(store, "combat")}
            for tier, counts in script.true_combat(sampled_players).items():
                # encounter_end is never sampled: exact even here.
                assert combat[tier]["wins"] == counts["win"]
            (xp,) = await _run(store, "xp")
            assert xp["players"] == len(sampled_players)  # everyone's play time
            truth_xph = script.true_xp_per_hour(sampled_players)
            assert xp["xp_per_hour_low"] <= truth_xph <= xp["xp_per_hour_high"]
            economy = {(r["flow"], r["item"]): r["amount"] for r in await _run(store, "economy")}
            true_economy = script.true_economy(sampled_players)
            assert economy[("source", "xp")] == pytest.approx(
                true_economy[("source", "xp")][1], rel=0.2
            )
            store.close()


async def test_funnel_and_retention_cross_the_salt_rotation_in_the_hot_store(
    postgres_dsn: str, tmp_path: Path
) -> None:
    # Activations from January 25th over a week: funnel steps, D7 and D30 land in February,
    # where every player has a new analytics_player_id. The profile carries them across.
    players = script.population(40, start=dt.datetime(2025, 1, 25, tzinfo=dt.UTC), days=8)
    async with fresh_database(postgres_dsn, "ins") as dsn:
        await fill_stores(dsn, tmp_path / "wh", players, ALL_KEPT)
        hot_store = stores.HotStore(dsn)
        for window in (7, 10):
            funnel = await _run(hot_store, "funnel", window=window)
            assert {r["step"]: r["players"] for r in funnel} == script.true_funnel(players, window)
        retention = {(r["activation_day"], r["day"]): (r["players"], r["retained"])
                     for r in await _run(hot_store, "retention")}  # fmt: skip
        assert retention == script.true_retention(players)
        assert any(day >= "2025-01-25" and n == 30 and kept for (day, n), (_, kept)
                   in retention.items())  # fmt: skip
        firsts = [r for r in await _run(hot_store, "funnel", by=("class", "playstyle"))
                  if r["step"] == "first_session"]  # fmt: skip
        assert all(script.PLAYSTYLE_OF_KIND[r["class"]] == r["playstyle"] for r in firsts)
        # In range by activation day: the February part of a player is not a new player.
        feb = await _run(hot_store, "funnel", date_from=dt.date(2025, 2, 2))
        assert feb == []


async def test_a_win_proves_combat_so_the_funnel_steps_nest(
    postgres_dsn: str, tmp_path: Path
) -> None:
    # Players whose only fight is a normal-tier win: engage_enemy is thinned to 0.5 by the
    # combat cohort, encounter_end never is. Every one of them fought and won, so both steps
    # are exactly all players; weighting the sampled engage_enemy alone gave 2 x (players in
    # the combat cohort), a figure above or below the winners by chance.
    rng = random.Random(5)
    players = [
        script.Player(
            uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)), klass="warrior",
            region="eu-west", platform="win64", build="2025.10.1",
            sessions=(script.session(START, 20, script.fight("normal", "win")),),
        )
        for _ in range(200)
    ]  # fmt: skip
    async with fresh_database(postgres_dsn, "nest") as dsn:
        await fill_stores(dsn, tmp_path / "wh", players, DEFAULTS)
        for store in (stores.HotStore(dsn), stores.WarmStore(str(tmp_path / "wh"))):
            funnel = {r["step"]: r["players"] for r in await _run(store, "funnel")}
            assert funnel == {"first_session": 200, "first_combat": 200, "first_combat_win": 200}
            store.close()
