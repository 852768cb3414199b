"""`gameplay-analytics insights parity`: client vs server event counts per event per day
(insights/parity.py), in the `insights` group's table/csv/json formats and store options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register"]


def register(
    metrics: argparse._SubParsersAction[Any],
    store_options: Callable[[argparse.ArgumentParser], None],
    date: Callable[[str], Any],
) -> None:
    """Add `parity` to the `insights` subcommands (with the group's own option helpers)."""
    parser = metrics.add_parser(
        "parity", help="client vs server counts per event per day (missing client events)"
    )
    store_options(parser)
    parser.add_argument("--from", dest="date_from", type=date, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", type=date, help="last day, YYYY-MM-DD")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from gameplay_analytics.commands.insights import EXIT_REFUSED, open_store
    from gameplay_analytics.insights import render
    from gameplay_analytics.insights.parity import parity
    from gameplay_analytics.insights.stores import InsightsError

    try:
        store = open_store(args)
        try:
            result = parity(store, args.date_from, args.date_to)
        finally:
            store.close()
    except InsightsError as err:
        print(f"gameplay-analytics: {err}", file=sys.stderr)
        return EXIT_REFUSED
    sys.stdout.write(render.render_result(result, args.format))
    return 0
