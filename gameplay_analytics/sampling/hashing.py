"""The deterministic sampling hash every SDK and server shares (PROTOCOL.md §2).

A player is in the sample for an event when xxh64("<uuid>:<cohort>") falls below rate * 2^64,
where the cohort is the event's rule's cohort key (by default its sampling class), so one player
is in or out of every event of a cohort together. The golden values live in
schemas/sampling-golden.json, which every SDK's tests read.
"""

from __future__ import annotations

import math
import uuid

import xxhash

__all__ = ["BUCKETS", "bucket", "canonical_uuid", "keep", "threshold"]

BUCKETS = 1 << 64
"""The size of the hash space: a rate r keeps the buckets below r * BUCKETS."""


def canonical_uuid(player_uuid: str | uuid.UUID) -> str:
    """The player UUID as every SDK hashes it: lowercase text.

    Strings are only lowercased, not reparsed, so that a client in any language can reproduce
    the hash with nothing but a lowercase function.
    """
    if isinstance(player_uuid, uuid.UUID):
        return str(player_uuid)
    return player_uuid.lower()


def bucket(player_uuid: str | uuid.UUID, cohort: str) -> int:
    """The player's bucket for one cohort key, an integer in [0, 2^64)."""
    key = f"{canonical_uuid(player_uuid)}:{cohort}"
    return int(xxhash.xxh64_intdigest(key.encode("utf-8"), seed=0))


def threshold(rate: float) -> int:
    """The first bucket that is *not* kept at `rate`: ceil(rate * 2^64), exactly.

    Multiplying a float by a power of two only moves its exponent, so `rate * 2.0**64` is the
    exact product and `math.ceil` turns it into an exact integer. An SDK that compared the
    64-bit bucket with a double instead would round near the edge and disagree with the server.
    NaN counts as 0: a broken rate must not keep everything.
    """
    if math.isnan(rate) or rate <= 0.0:
        return 0
    if rate >= 1.0:
        return BUCKETS
    return math.ceil(rate * float(BUCKETS))


def keep(player_uuid: str | uuid.UUID, cohort: str, *, rate: float) -> bool:
    """Whether this player's events of `cohort` are in the sample at `rate`.

    The decision depends on the player and the cohort key only, never on time, order or the
    event's name, so the same players stay in the sample for every event of the cohort, on
    every SDK and on the server.
    """
    if rate >= 1.0:
        return True
    return bucket(player_uuid, cohort) < threshold(rate)
