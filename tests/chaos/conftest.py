"""The chaos suite's stacks: one LocalStack (two aggregators) shared by the single-server
scenarios, one with a three-node JetStream cluster (stream at R3) shared by the cluster ones.

Scenarios tell their own events apart by the players' client_guids (each uses its own seed),
so sharing a stack costs nothing in precision and saves a start per scenario. Every scenario
appends its figures as one JSON line to `chaos_results` (CHAOS_RESULTS, else
`<pytest basetemp>/chaos-results.jsonl`; the path is printed at the end).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture(scope="session")
def chaos_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The results file (JSON lines, one per scenario), emptied at the session's start."""
    path = Path(
        os.environ.get("CHAOS_RESULTS") or tmp_path_factory.getbasetemp() / "chaos-results.jsonl"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    yield path
    print(f"\n[chaos] results: {path}")


async def _stack(nats_nodes: int) -> AsyncIterator[LocalStack]:
    root = Path(tempfile.mkdtemp(prefix="gameplay-chaos-"))
    stack = LocalStack(
        StackConfig(data_dir=root, jwt_secret=SECRET, aggregators=2, extra_env=CHAOS_ENV,
                    nats_nodes=nats_nodes)
    )  # fmt: skip
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.fixture(scope="module")
async def chaos_stack() -> AsyncIterator[LocalStack]:
    async for stack in _stack(1):
        yield stack


@pytest.fixture(scope="module")
async def cluster_stack() -> AsyncIterator[LocalStack]:
    """The stack on three clustered nats-servers; the stream and buckets at R3."""
    async for stack in _stack(3):
        yield stack
