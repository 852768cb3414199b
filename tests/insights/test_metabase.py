"""`insights metabase`: the three dashboards and their questions provisioned through Metabase's
REST API, against a local stand-in that records the calls and refuses malformed ones
(tests/insights/metabase_standin.py). Metabase itself is not run here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameplay_analytics.insights import metabase
from gameplay_analytics.insights.stores import InsightsError
from tests.insights.metabase_standin import API_KEY, PASSWORD, USER, MetabaseStandIn
from tests.insights.support import cli

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "metabase"
DSN = "postgresql://metabase:p%40ss@db.internal:5433/analytics?sslmode=require"


@pytest.fixture
def standin() -> Iterator[MetabaseStandIn]:
    with MetabaseStandIn() as server:
        yield server


def provision(server: MetabaseStandIn, *extra: str) -> tuple[int, str, str]:
    done = cli("insights", "metabase", "--url", server.url, "--dashboards", str(DASHBOARDS),
               *extra)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_provision_creates_everything_once(standin: MetabaseStandIn) -> None:
    code, out, err = provision(standin, "--api-key", API_KEY, "--dsn", DSN)
    assert code == 0, err
    boards = metabase.load_dashboards(DASHBOARDS)
    (database,) = standin.databases.values()
    assert database["details"] | {"password": "?"} == {
        "host": "db.internal", "port": 5433, "dbname": "analytics", "user": "metabase",
        "password": "?", "ssl": True, "schema-filters-type": "inclusion",
        "schema-filters-patterns": "analytics_mart",
    }  # fmt: skip
    assert database["details"]["password"] == "p@ss"
    wanted = [item["card"]["name"] for board in boards for item in board["cards"]]
    assert sorted(c["name"] for c in standin.cards.values()) == sorted(wanted)
    assert all(c["dataset_query"]["database"] == database["id"] for c in standin.cards.values())
    by_name = {d["name"]: d for d in standin.dashboards.values()}
    assert set(by_name) == {"Session funnel", "Combat success rates", "XP velocity"}
    for board in boards:
        made = by_name[board["name"]]
        assert [p["slug"] for p in made["parameters"]] == ["class", "region", "playstyle"]
        assert len(made["dashcards"]) == len(board["cards"])
        for dashcard in made["dashcards"]:
            assert len(dashcard["parameter_mappings"]) == 3  # every filter on every card
        assert f"/dashboard/{made['id']}" in out

    # Again: found by name, updated in place; nothing new, the dashcards keep their ids.
    before = {d["id"]: [c["id"] for c in d["dashcards"]] for d in standin.dashboards.values()}
    standin.requests.clear()
    code, out, err = provision(standin, "--api-key", API_KEY, "--dsn", DSN)
    assert code == 0, err
    assert [w for w in standin.writes() if w[0] == "POST"] == []
    assert len(standin.cards) == len(wanted) and len(standin.databases) == 1
    after = {d["id"]: [c["id"] for c in d["dashcards"]] for d in standin.dashboards.values()}
    assert after == before
    assert "created" not in out


def test_a_session_from_user_and_password(standin: MetabaseStandIn) -> None:
    code, _, err = provision(standin, "--user", USER, "--password", PASSWORD, "--dsn", DSN)
    assert code == 0, err
    assert standin.requests[0][:2] == ("POST", "/api/session")
    assert len(standin.dashboards) == 3


def test_refusals_are_one_line(standin: MetabaseStandIn, tmp_path: Path) -> None:
    code, _, err = provision(standin, "--api-key", API_KEY)
    assert code == 2 and "pass --dsn to create it" in err and len(err.splitlines()) == 1
    code, _, err = provision(standin, "--api-key", "wrong", "--dsn", DSN)
    assert code == 2 and "HTTP 401" in err
    code, _, err = provision(standin, "--user", USER, "--password", "nope")
    assert code == 2 and "HTTP 401" in err
    code, _, err = provision(standin)
    assert code == 2 and "--api-key, or --user and --password" in err
    assert standin.dashboards == {} and standin.cards == {}
    (tmp_path / "broken.json").write_text("{")
    done = cli("insights", "metabase", "--url", standin.url, "--api-key", API_KEY,
               "--dashboards", str(tmp_path))  # fmt: skip
    assert done.returncode == 2 and "not a dashboard definition" in done.stderr
    down = cli("insights", "metabase", "--url", "http://127.0.0.1:9", "--api-key", API_KEY,
               "--dashboards", str(DASHBOARDS))  # fmt: skip
    assert down.returncode == 2 and "Metabase unreachable" in down.stderr


def test_payloads() -> None:
    (board, *_) = metabase.load_dashboards(DASHBOARDS)
    card = board["cards"][0]["card"]
    payload = metabase.card_payload(card, database_id=7, collection_id=3)
    assert payload["dataset_query"]["database"] == 7 and payload["collection_id"] == 3
    assert card["dataset_query"]["database"] == metabase.DATABASE_PLACEHOLDER  # not mutated
    ids = {item["card"]["name"]: 100 + n for n, item in enumerate(board["cards"])}
    fresh = metabase.dashcards_payload(board, ids, [])
    assert [d["id"] for d in fresh] == [-(n + 1) for n in range(len(board["cards"]))]
    again = metabase.dashcards_payload(board, ids, [{"id": 55, "card_id": 100}])
    assert again[0]["id"] == 55
    assert json.dumps(again)  # plain JSON
    with pytest.raises(InsightsError, match="postgresql://"):
        metabase.database_payload("x", "mysql://h/db")
