"""One frame budget per player, shared by the player's connections to a gateway."""

from __future__ import annotations

from gameplay_analytics.runtime.gateway.budgets import PlayerBudgets


def test_player_budgets_are_shared_and_released() -> None:
    budgets = PlayerBudgets(2)
    first, second = budgets.join("p", 0.0), budgets.join("p", 0.0)
    assert first is second and budgets.join("q", 0.0) is not first
    assert [first.take(0.0), second.take(0.0), first.take(0.0)] == [True, True, False]
    budgets.leave("p")
    assert budgets.join("p", 0.0) is first  # still held by one session
    budgets.leave("p"), budgets.leave("p"), budgets.leave("q"), budgets.leave("unknown")
    assert len(budgets) == 0
