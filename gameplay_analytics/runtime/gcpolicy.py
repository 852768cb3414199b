"""A runtime process' garbage-collector policy (the aggregator's, the gateway's), applied once
startup is done.

Aggregator: a batch holds tens of thousands of rows alive while the next one is prepared,
and CPython's default collector (a young collection every 700 allocations, full ones as the
heap grows) walked them, and every object of the libraries loaded at startup, again and
again: about a third of the aggregator's CPU per event in `bench/aggregator_bench.py`.
Freezing what startup made moves it out of every collection, and a larger young generation
lets a batch's short-lived objects die before the collector looks at them. Reference counting
still frees almost everything; the collector only finds cycles, and a batch makes none.

Gateway: every envelope's events stay alive until JetStream acknowledges them, so collections
came often, and a full one walked every object of the imports (~70 ms each, about a tenth of
the gateway's CPU per frame in `bench/gateway_cpu.py` on the loaded 2-core machine).
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "tune_gc"]

YOUNG_THRESHOLD: Final = 10_000
"""Allocations between two young-generation collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Freeze the objects alive now and widen the young generation; call after startup."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
