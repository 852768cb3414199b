"""The aggregator's bulk histogram update says exactly what one `observe` per value says."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from gameplay_analytics.runtime.aggregator.metrics import _observe_many

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
    amounts = [0.0, 0.05, 0.1, 5.0, 7.5] + [rng.expovariate(2.0) for _ in range(500)]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    single = Histogram("lat", "x", buckets=BUCKETS, registry=one)
    many = Histogram("lat", "x", buckets=BUCKETS, registry=bulk)
    for a in amounts:
        single.observe(a)
    _observe_many(many, amounts[:200])
    _observe_many(many, amounts[200:])
    _observe_many(many, [])
    got, want = _samples(bulk), _samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) < 1e-9, key
