"""Which pipeline owns a stream or bucket on a shared NATS: pure decisions.

The operator writes an owner mark (`owner_mark`) as the description of each stream and
config bucket it creates. Before it creates or updates one, it reads the mark back: a mark
naming another pipeline means the names collide, and the pipeline is refused in its status
instead of taking over (and rewriting the subjects or rules of) the other pipeline's objects.
An object without a mark (made by `gameplay-analytics up`, or before marks existed) is adopted.
"""

from __future__ import annotations

from collections.abc import Mapping

from gameplay_analytics.contract.natsnames import PipelineNames

__all__ = ["COLLISION_REASON", "claim_problems", "owner_mark"]

COLLISION_REASON = "NatsNamesInUse"
_PREFIX = "gameplay-analytics AnalyticsPipeline "


def owner_mark(namespace: str, name: str) -> str:
    return f"{_PREFIX}{namespace}/{name}"


def claim_problems(names: PipelineNames, mine: str, found: Mapping[str, str | None]) -> list[str]:
    """Why this pipeline may not use its names: `found` maps "stream" and "bucket" to the
    description of the existing object (absent key: no such object). Empty: all clear."""
    problems = []
    for what, name in (("stream", names.stream), ("bucket", names.config_bucket)):
        if what not in found:
            continue
        mark = found[what] or ""
        if mark and mark != mine:
            owner = mark.removeprefix(_PREFIX) if mark.startswith(_PREFIX) else repr(mark)
            problems.append(
                f"NATS {what} {name} belongs to {owner}: set spec.nats."
                f"{'stream' if what == 'stream' else 'configBucket'} to a free name"
            )
    return problems
