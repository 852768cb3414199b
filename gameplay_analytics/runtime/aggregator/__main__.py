"""`python -m gameplay_analytics.runtime.aggregator`: one aggregator replica, configured from
the environment (`GAMEPLAY_ANALYTICS_*`), until SIGTERM."""

import asyncio
import logging

from gameplay_analytics.runtime.aggregator.app import run_aggregator
from gameplay_analytics.runtime.aggregator.settings import AggregatorSettings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
asyncio.run(run_aggregator(AggregatorSettings()))
