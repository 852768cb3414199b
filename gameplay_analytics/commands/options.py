"""Options several command groups share, each with its default from the owner of the fact."""

from __future__ import annotations

import argparse

from gameplay_analytics.insights.core import DEFAULT_WINDOW_DAYS

__all__ = ["add_window_option"]


def add_window_option(parser: argparse.ArgumentParser) -> None:
    """`--window DAYS`: the onboarding funnel's window after activation."""
    parser.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW_DAYS,
        help=f"funnel window in days ({DEFAULT_WINDOW_DAYS})",
    )
