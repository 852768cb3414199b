"""Synthetic players and the load harness: real WebSockets, the real SDK, known sequences."""

from gameplay_analytics.loadgen.harness import LoadProfile, LoadResult, run_load
from gameplay_analytics.loadgen.loadtest import Target, run_load_test
from gameplay_analytics.loadgen.players import EventMix
from gameplay_analytics.loadgen.report import LoadReport

__all__ = [
    "EventMix",
    "LoadProfile",
    "LoadReport",
    "LoadResult",
    "Target",
    "run_load",
    "run_load_test",
]
