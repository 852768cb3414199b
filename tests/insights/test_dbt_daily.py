"""The daily summary on known figures (insights/daily.py, pure): which cohort a D1/D7 rate
is, the win rate over all tiers, the change, the Markdown; and `insights daily` refusals."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gameplay_analytics.insights import daily, dbt_run
from gameplay_analytics.insights.stores import InsightsError
from tests.insights.support import ROOT_ENV, cli

DAY = dt.date(2025, 5, 10)


def _run(metric: str, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Known rows, as `core.compute` shapes them; the figures differ by day."""
    bump = 0.1 if last == DAY else 0.0
    if metric == "funnel":
        assert first == last
        return [
            {"step": "first_session", "players": 10 if bump else 8, "rate": 1.0},
            {"step": "first_combat", "players": 7, "rate": 0.5 + bump},
            {"step": "first_combat_win", "players": 5, "rate": 0.4},
        ]
    if metric == "retention":
        assert last - first == dt.timedelta(days=6)
        rows = []
        for age in range(1, 8):
            cohort = (last + dt.timedelta(days=1) - dt.timedelta(days=age)).isoformat()
            for n in (1, 7, 30):
                rows.append({"activation_day": cohort, "day": n, "rate": age / 10 + n / 100})
        return rows
    if metric == "combat":
        return [
            {"tier": "boss", "encounters": 4, "wins": 1, "win_rate": 0.25},
            {"tier": "normal", "encounters": 6, "wins": 5 if bump else 3, "win_rate": 0.5},
        ]
    assert metric == "xp"
    return [{"xp_per_hour": 120.0 if bump else 100.0}]


def test_the_figures_of_a_day() -> None:
    got = daily.figures(_run, DAY)
    assert got["funnel"] == {"activated": 10, "first_combat": 0.6, "first_combat_win": 0.4}
    # D1: the cohort of the day before (age 1), day 1; D7: the cohort 7 days before, day 7.
    assert got["retention"] == {"d1": 0.1 + 0.01, "d7": 0.7 + 0.07}
    assert got["combat"] == {
        "win_rate_boss": 0.25, "win_rate_normal": 0.5, "win_rate": 0.6, "encounters": 10.0
    }  # fmt: skip
    assert got["xp_velocity"] == {"xp_per_hour": 120.0}


def test_the_summary_and_its_markdown() -> None:
    today, yesterday = daily.figures(_run, DAY), daily.figures(_run, DAY - dt.timedelta(days=1))
    summary = daily.summarise(DAY, today, yesterday, extra={"store": "warm", "window": 7})
    assert summary["day"] == "2025-05-10" and summary["previous_day"] == "2025-05-09"
    assert summary["figures"]["combat"]["win_rate"] == {
        "value": 0.6, "previous": 0.4, "change": 0.2
    }  # fmt: skip
    assert summary["figures"]["xp_velocity"]["xp_per_hour"]["change"] == 20.0
    assert summary["figures"]["funnel"]["activated"]["change"] == 2
    text = daily.markdown(summary)
    assert "| win_rate | 60.0 % | 40.0 % | +20.0 pp |" in text
    assert "| xp_per_hour | 120 | 100 | +20 |" in text
    assert "| activated | 10 | 8 | +2 |" in text


def test_a_missing_figure_has_no_change() -> None:
    summary = daily.summarise(DAY, {"xp_velocity": {"xp_per_hour": 5.0}},
                              {"xp_velocity": {"xp_per_hour": None}})  # fmt: skip
    assert summary["figures"]["xp_velocity"]["xp_per_hour"]["change"] is None
    assert "| xp_per_hour | 5 | – | – |" in daily.markdown(summary)


def test_the_daily_job_refuses_in_one_line(tmp_path: Path) -> None:
    done = cli("insights", "daily", "--store", "warm", "--root", str(tmp_path / "nope"),
               "--out", str(tmp_path / "out"), "--dbt", "never")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "warm store unreachable" in done.stderr


def test_the_daily_job_without_dbt_still_writes_the_summary(
    warm_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "2025-03-02"  # from --out DIR/{day}, as the CronJob passes it
    done = cli("insights", "daily", "--store", "warm", "--root", str(warm_root),
               "--out", str(tmp_path / "{day}"),
               "--day", "2025-03-02", "--dbt", "never")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "summary.md").is_file()
    # The log carries the summary too (the CronJob's --out is an emptyDir without claimName).
    assert (out / "summary.md").read_text() in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dbt"] == {"status": "skipped", "reason": "--dbt never"}
    assert summary["figures"]["funnel"]["activated"]["previous"] > 0


def test_the_dbt_environment_of_each_store(tmp_path: Path) -> None:
    hot = dbt_run.environment(
        dsn="postgresql://ana%40ly:p%2Fw@db.example:6543/games", work=tmp_path
    )
    assert hot["GAMEPLAY_ANALYTICS_DBT_TARGET"] == "postgres"
    assert (hot["PGHOST"], hot["PGPORT"], hot["PGUSER"], hot["PGPASSWORD"], hot["PGDATABASE"]) == (
        "db.example", "6543", "ana@ly", "p/w", "games"
    )  # fmt: skip
    socket = dbt_run.environment(dsn="postgresql:///games?host=/run/pg&user=a", work=tmp_path)
    assert (socket["PGHOST"], socket["PGUSER"], socket["PGPORT"]) == ("/run/pg", "a", "5432")
    warm = dbt_run.environment(root=str(tmp_path), work=tmp_path / "w")
    assert warm["GAMEPLAY_ANALYTICS_DBT_TARGET"] == "duckdb"
    assert warm["GAMEPLAY_ANALYTICS_DBT_DUCKDB"] == str(tmp_path / "w" / dbt_run.DUCKDB_FILE)
    for bad in ({"root": "s3://bucket/prefix"}, {"dsn": "mysql://x/y"}, {}):
        with pytest.raises(InsightsError):
            dbt_run.environment(work=tmp_path, **bad)


def test_always_refuses_without_dbt(tmp_path: Path, warm_root: Path) -> None:
    env = {**ROOT_ENV, "GAMEPLAY_ANALYTICS_DBT": str(tmp_path / "no-dbt")}
    done = subprocess.run(
        [sys.executable, "-m", "gameplay_analytics.cli", "insights", "daily", "--store", "warm",
         "--root", str(warm_root), "--out", str(tmp_path / "out"), "--dbt", "always"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and "dbt is not installed" in done.stderr
