"""`source` (client / server): the aggregator's rows, its refusal of an unknown source, the
server's sequence space, and the parity report's shaping."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gameplay_analytics.insights.parity import parity, shape_parity
from gameplay_analytics.insights.stores import WarmStore
from gameplay_analytics.runtime.aggregator import Enricher
from gameplay_analytics.runtime.storage.warm import WARM_SCHEMA
from gameplay_analytics.sdk.server import server_client_guid
from tests.unit.test_aggregator_enrich import PLAYER, TS, C, enricher, ev, message

__all__ = ["enricher"]  # fixture used here


def test_rows_carry_the_batchs_source(enricher: Enricher) -> None:
    client = enricher.prepare(message(ev(1)), stream_seq=1, now_ms=0)
    assert client.rows[0][C["source"]] == "client"  # omitted on the wire means client
    server = enricher.prepare(message(ev(1), source="server"), stream_seq=2, now_ms=0)
    assert server.rows[0][C["source"]] == "server"
    # the same player, the same pseudonym on both sides
    assert server.rows[0][C["analytics_player_id"]] == client.rows[0][C["analytics_player_id"]]


def test_server_events_do_not_feed_sessions(enricher: Enricher) -> None:
    start = ev(1, "session_start", ts=TS, character_class="mage")
    assert enricher.prepare(message(start), stream_seq=1, now_ms=0).sessions
    out = enricher.prepare(message(start, source="server"), stream_seq=2, now_ms=0)
    assert len(out.rows) == 1 and not out.sessions and out.profile is None


def test_an_unknown_source_is_dead_lettered_whole(enricher: Enricher) -> None:
    out = enricher.prepare(message(ev(1), ev(2), source="bot"), stream_seq=5, now_ms=9)
    assert out.rows == []
    [entry] = out.dlq
    assert entry.entry.reason == "invalid_message" and "source" in entry.entry.detail


def test_the_server_has_a_sequence_space_per_instance_and_player() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    assert server_client_guid(one, PLAYER) == server_client_guid(str(one), PLAYER.upper())
    assert server_client_guid(one, PLAYER) != server_client_guid(two, PLAYER)
    assert server_client_guid(one, PLAYER) != server_client_guid(one, str(uuid.uuid4()))


def test_parity_shows_the_gap_and_the_share() -> None:
    rows = shape_parity(
        [
            {"day": dt.date(2026, 12, 4), "event": "encounter_end", "client": 7, "server": 10},
            {"day": "2026-12-04", "event": "item_acquired", "client": 3, "server": 2},
            {"day": dt.date(2026, 12, 5), "event": "engage_enemy", "client": 4, "server": 0},
        ]
    )
    assert [(r["day"], r["missing_client"], r["client_share"]) for r in rows] == [
        ("2026-12-04", 3, 0.7),
        ("2026-12-04", 0, 1.5),
        ("2026-12-05", 0, None),
    ]


def _day_file(root: Path, name: str, events: list[str], source: str | None) -> None:
    fields = [f for f in WARM_SCHEMA if source is not None or f.name != "source"]
    day = dt.date(2026, 12, 4)
    rows = [
        {"analytics_player_id": "p" * 64, "client_guid": str(uuid.uuid4()), "seq": i,
         "event_name": e, "category": "combat", "event_day": day, "schema_version": "1.0.0",
         "sample_rate": 1.0, "props": "{}", "source": source}
        for i, e in enumerate(events)
    ]  # fmt: skip
    folder = root / "gameplay" / f"event_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), folder / name)


def test_parity_on_a_warm_store_with_files_from_before_the_source_column(tmp_path: Path) -> None:
    _day_file(tmp_path, "old.parquet", ["encounter_end"] * 2 + ["xp_gain"], source=None)
    store = WarmStore(str(tmp_path))
    try:  # no file has `source` yet: the view still has it, null
        assert store.fetch("SELECT count(source) AS n FROM analytics_events", []) == [{"n": 0}]
        _day_file(tmp_path, "new.parquet", ["encounter_end"] * 3, source="server")
    finally:
        store.close()
    store = WarmStore(str(tmp_path))
    try:
        result = parity(store, dt.date(2026, 12, 4), None)
    finally:
        store.close()
    assert result.rows == [
        {"day": "2026-12-04", "event": "encounter_end", "client": 2, "server": 3,
         "missing_client": 1, "client_share": 0.666667},
    ]  # fmt: skip
