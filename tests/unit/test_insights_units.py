"""The pure parts of insights: estimators, shaping rows, rendering, argument checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics.insights import core, definitions, estimators, render
from gameplay_analytics.insights.dialect import Dialect
from gameplay_analytics.insights.dialect import render as render_sql
from gameplay_analytics.insights.stores import InsightsError


def test_wilson_matches_the_textbook_values() -> None:
    # Wilson (1927) / Newcombe (1998) table: 8 of 10 -> 0.4902 to 0.9433 at 95 %.
    low, high = estimators.wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert estimators.wilson(0, 0) == (0.0, 1.0)
    low, high = estimators.wilson(0, 20)
    assert low == 0.0 and 0.16 < high < 0.17


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_wilson_contains_the_estimate(successes: int, extra: int) -> None:
    trials = successes + extra
    low, high = estimators.wilson(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_normal_interval_and_ratio() -> None:
    assert estimators.normal_interval(100.0, 0.0) == (100.0, 100.0)
    low, high = estimators.normal_interval(10.0, 400.0)
    assert low == 0.0 and high == pytest.approx(10 + 1.959963984540054 * 20)
    assert estimators.ratio(1, 0) is None and estimators.ratio(1, 4) == 0.25


def test_funnel_rows_are_steps_with_rates_of_step_one() -> None:
    raw = [{"dim_class": "mage", "first_session": 10, "first_combat": 6.0,
            "first_combat_win": 3.0}]  # fmt: skip
    rows = core.shape("funnel", raw, ["class"])
    assert [r["step"] for r in rows] == list(definitions.FUNNEL_STEPS)
    assert [r["players"] for r in rows] == [10, 6, 3]
    assert [r["rate"] for r in rows] == [1.0, 0.6, 0.3]
    assert all(list(r)[:2] == ["class", "step"] for r in rows)
    assert rows[1]["rate_low"] < 0.6 < rows[1]["rate_high"]


def test_params_refuse_what_the_protocol_refuses() -> None:
    with pytest.raises(InsightsError, match="unknown dimension 'guild'"):
        core.Params(store="hot", by=("class", "guild"))
    with pytest.raises(InsightsError, match="repeated"):
        core.Params(store="hot", by=("class", "class"))
    with pytest.raises(InsightsError, match="window"):
        core.Params(store="hot", window=-1)
    assert core.Params(store="warm").as_json("xp") == {
        "store": "warm",
        "from": None,
        "to": None,
        "by": [],
    }
    assert core.Params(store="warm").as_json("funnel")["window"] == core.DEFAULT_WINDOW_DAYS


def test_every_metric_renders_for_both_dialects() -> None:
    for name, metric in definitions.METRICS.items():
        for dialect in Dialect:
            sql = render_sql(metric.template, dialect, dims="pl.d_class AS dim_class, ",
                             group=", dim_class", sinks="'trash'")  # fmt: skip
            assert "{" not in sql.replace("{}", ""), name
            assert ("props->>" in sql) == (dialect is Dialect.POSTGRES)
        assert metric.estimator and set(metric.params) <= {"from", "to", "window"}
    with pytest.raises(ValueError, match="not a prop name"):
        Dialect.POSTGRES.prop("x'; DROP TABLE t; --")


def test_table_folds_intervals_and_json_is_one_object() -> None:
    result = core.Result(
        "combat",
        {"store": "hot", "from": None, "to": None, "by": []},
        core.shape("combat", [{"tier": "boss", "encounters": 4.0, "wins": 3.0, "losses": 1.0,
                               "flees": 0.0, "deaths": 2.0, "engagements": 4.0}], []),
    )  # fmt: skip
    table = render.render_result(result, "table")
    assert "75.0% [" in table and "win_rate_low" not in table
    assert json.loads(render.render_result(result, "json"))["rows"][0]["wins"] == 3
    assert render.render_result(result, "csv").splitlines()[0].startswith("tier,encounters")
