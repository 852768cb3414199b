"""The latency split by stage (loadgen/stages.py): pure arithmetic over a run's stamps."""

from __future__ import annotations

from gameplay_analytics.loadgen.stages import STAGES, StampedRow, stage_latencies, stamped


def test_each_stage_is_the_span_between_its_stamps() -> None:
    rows = [
        StampedRow(event_ts=100.0, received_at=100.04, stream_at=100.045, stored_at=100.06),
        StampedRow(event_ts=200.0, received_at=200.02, stream_at=200.03, stored_at=200.1),
    ]
    by = {x.stage: x for x in stage_latencies(rows)}
    assert tuple(by) == STAGES
    assert by["sdk"].p50_ms == 30.0 and by["sdk"].p95_ms == 39.0
    assert by["gateway"].p50_ms == 7.5
    assert by["aggregator"].p50_ms == 42.5
    assert by["total"].p50_ms == 80.0 and by["total"].events == 2


def test_a_message_gone_from_the_stream_counts_in_the_ends_only() -> None:
    rows = stamped([(1.0, 1.01, 7, 1.05), (2.0, 2.02, 8, 2.04)], {7: 1.02})
    by = {x.stage: x for x in stage_latencies(rows)}
    assert by["gateway"].events == by["aggregator"].events == 1
    assert by["sdk"].events == by["total"].events == 2


def test_no_rows_give_zeros() -> None:
    assert all(x.events == 0 and x.p95_ms == 0.0 for x in stage_latencies([]))
