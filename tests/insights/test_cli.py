"""`gameplay-analytics insights …` and `query` as a designer and a script run them (PROTOCOL.md
§6): JSON shape, tables, CSV, plots, and one-line refusals with exit 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.insights import script
from tests.insights.support import cli

MEASURES = {
    "funnel": {"step", "players", "rate", "rate_low", "rate_high"},
    "retention": {"activation_day", "day", "players", "retained", "rate"},
    "sessions": {"sessions", "players", "median_minutes", "sessions_per_player_day"},
    "combat": {"tier", "encounters", "wins", "losses", "flees", "win_rate", "win_rate_low",
               "win_rate_high"},
    "xp": {"players", "hours", "xp", "xp_per_hour"},
    "economy": {"flow", "item", "events", "amount"},
}  # fmt: skip


@pytest.mark.parametrize("metric", list(MEASURES))
def test_json_follows_the_protocol(warm_root: Path, metric: str) -> None:
    done = cli("insights", metric, "--store", "warm", "--root", str(warm_root),
               "--by", "class,region", "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["metric"] == metric
    assert out["params"]["store"] == "warm" and out["params"]["by"] == ["class", "region"]
    assert out["rows"]
    for row in out["rows"]:
        assert list(row)[:2] == ["class", "region"]
        assert MEASURES[metric] <= set(row)


def test_funnel_json_numbers(warm_root: Path, players: list[script.Player]) -> None:
    done = cli("insights", "funnel", "--store", "warm", "--root", str(warm_root),
               "--window", "10", "--format", "json")  # fmt: skip
    out = json.loads(done.stdout)
    assert out["params"] == {"store": "warm", "from": None, "to": None, "by": [], "window": 10}
    steps = {r["step"]: r for r in out["rows"]}
    truth = script.true_funnel(players, 10)
    assert steps["first_session"]["players"] == truth["first_session"] == len(players)
    # encounter_end is never sampled: the win step is exact at the default rates too.
    assert steps["first_combat_win"]["players"] == truth["first_combat_win"]


def test_table_csv_and_plot(warm_root: Path, tmp_path: Path) -> None:
    plot = tmp_path / "combat.png"
    done = cli("insights", "combat", "--store", "warm", "--root", str(warm_root),
               "--plot", str(plot))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("combat (warm store")
    assert lines[1].split()[:3] == ["tier", "encounters", "wins"]
    assert "%" in lines[3] and "[" in lines[3]  # win rate with its interval
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = cli("insights", "xp", "--store", "warm", "--root", str(warm_root), "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(done.stdout)))
    assert float(row["xp_per_hour"]) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["insights", "funnel", "--by", "guild"], "unknown dimension 'guild'"),
        (["insights", "funnel", "--from", "2025-02-30"], "not a date"),
        (["insights", "churn"], "invalid choice: 'churn'"),
        (["insights", "xp", "--format", "xml"], "invalid choice: 'xml'"),
        (["insights", "retention", "--dsn", "postgresql://x@127.0.0.1:1/none"],
         "hot store unreachable"),
        (["insights", "sessions", "--store", "warm", "--root", "/nonexistent/wh"],
         "warm store unreachable"),
        (["insights", "sessions", "--from", "2025-03-02", "--to", "2025-03-01", "--store",
          "warm", "--root", "."], "is after --to"),
        (["insights", "funnel"], "the hot store needs --dsn or --endpoints"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_empty_range_is_no_rows(warm_root: Path) -> None:
    done = cli("insights", "funnel", "--store", "warm", "--root", str(warm_root),
               "--from", "2020-01-01", "--to", "2020-01-02", "--format", "json")  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["rows"] == []
    done = cli("insights", "funnel", "--store", "warm", "--root", str(warm_root),
               "--from", "2020-01-01", "--to", "2020-01-02")  # fmt: skip
    assert done.returncode == 0 and "(no rows)" in done.stdout


def test_endpoints_file_names_the_stores(warm_root: Path, tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    found = {"warehouse_root": str(warm_root), "postgres_dsn": "postgresql://x@127.0.0.1:1/n"}
    endpoints.write_text(json.dumps(found))
    done = cli("insights", "xp", "--store", "warm", "--endpoints", str(endpoints))
    assert done.returncode == 0, done.stderr


def test_query_keeps_working_with_formats(warm_root: Path) -> None:
    sql = "SELECT event_name, count(*) AS n FROM analytics_events GROUP BY 1 ORDER BY 1"
    done = cli("query", sql, "--root", str(warm_root))
    assert done.returncode == 0 and done.stdout.splitlines()[0] == "event_name\tn"
    done = cli("query", sql, "--root", str(warm_root), "--format", "json")
    names = [r["event_name"] for r in json.loads(done.stdout)["rows"]]
    assert "session_start" in names
    done = cli("query", "SELEC nonsense", "--root", str(warm_root))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "query failed" in done.stderr and "Traceback" not in done.stderr
