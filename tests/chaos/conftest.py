"""The chaos suite's stack: one LocalStack (two aggregators) shared by every scenario.

Scenarios tell their own events apart by the players' client_guids (each uses its own seed),
so sharing the stack costs nothing in precision and saves a start per scenario.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gameplay_analytics.local.stack import LocalStack, StackConfig

SECRET = "chaos-test-secret-chaos-test-secret-0123456789"

# Faster recovery than production defaults, so a scenario fits in seconds (docs/runbooks/chaos.md):
# a killed aggregator's unacked batch is redelivered after ACK_WAIT_S, retries back off to at
# most RETRY_MAX_S (< ACK_WAIT_S, so `in_progress` keeps a retried batch with its holder), and
# lag is read every second for the drain check.
CHAOS_ENV = {
    "GAMEPLAY_ANALYTICS_ACK_WAIT_S": "5",
    "GAMEPLAY_ANALYTICS_RETRY_MAX_S": "1",
    "GAMEPLAY_ANALYTICS_LAG_INTERVAL_S": "1",
    "GAMEPLAY_ANALYTICS_SALT_SECRET": "chaos-salt-secret",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault injection against the local stack")


@pytest.fixture(scope="module")
async def chaos_stack() -> AsyncIterator[LocalStack]:
    root = Path(tempfile.mkdtemp(prefix="gameplay-chaos-"))
    stack = LocalStack(
        StackConfig(data_dir=root, jwt_secret=SECRET, aggregators=2, extra_env=CHAOS_ENV)
    )
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
