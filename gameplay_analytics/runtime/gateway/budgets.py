"""Per-player frame budgets: one token bucket per player shared by all their connections.

A player who opens ten sockets to one gateway gets the budget of one (`max_player_rate_hz`),
on top of each connection's own (`max_rate_hz`). The bucket lives while any of the player's
sessions does. Per gateway process: sockets spread over several gateways get one budget each.
"""

from __future__ import annotations

from gameplay_analytics.runtime.gateway.replies import TokenBucket

__all__ = ["PlayerBudgets"]


class PlayerBudgets:
    """Player UUID → (shared bucket, sessions holding it)."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._buckets: dict[str, tuple[TokenBucket, int]] = {}

    def join(self, player_uuid: str, now: float) -> TokenBucket:
        bucket, holders = self._buckets.get(player_uuid, (None, 0))
        if bucket is None:
            bucket = TokenBucket(self.rate_hz, now)
        self._buckets[player_uuid] = (bucket, holders + 1)
        return bucket

    def leave(self, player_uuid: str) -> None:
        entry = self._buckets.get(player_uuid)
        if entry is None:
            return
        bucket, holders = entry
        if holders <= 1:
            del self._buckets[player_uuid]
        else:
            self._buckets[player_uuid] = (bucket, holders - 1)

    def __len__(self) -> int:
        return len(self._buckets)
