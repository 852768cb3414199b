"""The aggregator's bulk histogram update says exactly what one `observe` per value says."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from gameplay_analytics.runtime.aggregator.metrics import _observe_ages

BUCKETS = (0.05, 0.1, 0.25, 1, 5)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_bulk_observe_matches_one_by_one() -> None:
    rng = random.Random(7)
    now_s = 1_733_300_000.1234
    now_ms = int(now_s * 1000)
    # On a bucket bound, past it, at now, ahead of now (age 0), and a spread of ages.
    times = [now_ms - 50, now_ms - 100, now_ms - 5000, now_ms - 7500, now_ms, now_ms + 900]
    times += [now_ms - int(rng.expovariate(2.0) * 1000) for _ in range(500)]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    single = Histogram("lat", "x", buckets=BUCKETS, registry=one)
    many = Histogram("lat", "x", buckets=BUCKETS, registry=bulk)
    for t in times:
        single.observe(max(0.0, now_s - t / 1000))
    _observe_ages(many, sorted(times[:200]), now_s)
    _observe_ages(many, sorted(times[200:]), now_s)
    _observe_ages(many, [], now_s)
    got, want = _samples(bulk), _samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key[0] == "lat_sum":  # one by one, each age is off by up to now_s's float step
            assert abs(got[key] - value) < 1e-6 * len(times), key
        else:
            assert got[key] == value, key
