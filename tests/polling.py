"""Waiting for a condition in a test without a fixed sleep: poll it, fail when it never holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Return once `check()` holds; assert it after `timeout_s` (the failure shows it)."""
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()
