"""SDK speed: median `track()` cost with the buffer half full, and memory at the 1 MiB cap.

The raw limit is msgspec encoding the same event (the one unavoidable step of `track()`),
measured in the same run. Run: `.venv/bin/python bench/sdk_bench.py`.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
import uuid
from typing import Any

import msgspec

from gameplay_analytics.contract import frames
from gameplay_analytics.sdk import DEFAULT_CAP_BYTES, AnalyticsClient
from gameplay_analytics.sdk.client import default_rules

BATCH = 1000
BATCHES = 200
PLAYER = "0b9f3c1e-2d4a-4b6c-8e1f-3a5b7c9d1e2f"

_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("engage_enemy", {"enemy_id": "orc_7", "tier": "elite"}),
    ("damage_dealt", {"amount": 12.5, "tier": "boss"}),
    ("encounter_end", {"encounter_id": "enc_1", "tier": "normal", "outcome": "win"}),
    ("skill_rank_up", {"skill": "fireball", "rank": 3}),
    ("session_start", {"character_class": "mage"}),
]


def _client() -> AnalyticsClient:
    client = AnalyticsClient(player_uuid=PLAYER, client_guid=uuid.uuid4(), token="t")
    client.on_connected()
    rules = default_rules()
    client.on_frame(
        frames.encode(
            frames.Welcome(session_id="b", sampling=rules.to_wire(), sampling_version=rules.version)
        )
    )
    return client


def track_cost_us() -> tuple[float, float]:
    """(median µs per track(), median µs per raw encode of the same event)."""
    client = _client()
    buffer = client._outbox.buffer
    while buffer.size < DEFAULT_CAP_BYTES // 2:
        client.track("encounter_end", encounter_id="fill", tier="normal", outcome="win")
    half = buffer.size
    track = client.track
    samples = []
    gc.disable()
    try:
        for _ in range(BATCHES):
            start = time.perf_counter_ns()
            for i in range(BATCH):
                name, props = _EVENTS[i % 5]
                track(name, **props)
            samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
            while buffer.size > half:  # back to half full, untimed
                buffer.take(max_events=500, max_bytes=buffer.size - half + 200)
        encode = msgspec.json.encode
        raw = []
        for _ in range(BATCHES):
            start = time.perf_counter_ns()
            for i in range(BATCH):
                name, props = _EVENTS[i % 5]
                encode({"seq": i, "name": name, "ts": 1759320000123, "props": props})
            raw.append((time.perf_counter_ns() - start) / BATCH / 1000)
    finally:
        gc.enable()
    assert client.stats.errors == 0
    return statistics.median(samples), statistics.median(raw)


def memory_at_cap() -> tuple[int, int]:
    """(bytes of Python memory the client holds with its buffer at the cap, cap)."""
    gc.collect()
    tracemalloc.start()
    client = _client()
    base = tracemalloc.get_traced_memory()[0]
    i = 0
    while sum(client.stats.overflow.values()) < 20_000:
        name, props = _EVENTS[i % 4] if i % 3 else ("client_tick", {"fps": 60.0})
        client.track(name, **props)
        i += 1
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert client.buffered_bytes <= DEFAULT_CAP_BYTES
    return held, DEFAULT_CAP_BYTES


def run() -> list[dict[str, Any]]:
    track_us, raw_us = track_cost_us()
    held, cap = memory_at_cap()
    return [
        {
            "component": "sdk",
            "metric": "track_median_us (buffer half full)",
            "value": round(track_us, 3),
            "raw": round(raw_us, 3),
            "ratio": round(track_us / raw_us, 2),
            "target": "<=5us",
        },
        {
            "component": "sdk",
            "metric": "memory_at_1MiB_cap_bytes",
            "value": held,
            "raw": cap,
            "ratio": round(held / cap, 2),
            "target": "<=2MiB",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
