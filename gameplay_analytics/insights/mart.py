"""The Metabase-ready views: schema `analytics_mart` in the hot store, one view per metric.

Each view is the metric's own definition (`definitions.METRICS`, rendered by `core.whole_store_sql`
for Postgres), never a copy: its parameters become constants (the whole store, the default
funnel window) and it is grouped by every slice of `definitions.DIMENSIONS`, so a BI tool
filters on `dim_class`, `dim_region`, `dim_playstyle`, … and sums the raw counts. Rates are
ratios of sums (`SUM(wins) / SUM(encounters)`), never sums of rates: the views carry the
additive numerators and denominators the CLI shapes into rates.
"""

from __future__ import annotations

from typing import Final

from gameplay_analytics.insights import core, definitions
from gameplay_analytics.insights.dialect import Dialect

__all__ = ["SCHEMA", "VIEWS", "refresh_statements", "view_sql"]

SCHEMA: Final = "analytics_mart"
VIEWS: Final = tuple(definitions.METRICS)
"""One view per metric, named as the metric (`analytics_mart.combat`, …)."""


def view_sql(metric: str, *, window: int = core.DEFAULT_WINDOW_DAYS) -> str:
    """The SELECT behind `analytics_mart.<metric>`: the hot store's definition over the whole
    store, grouped by every slice, with its positional parameters made constants."""
    return core.whole_store_sql(metric, Dialect.POSTGRES, window=window)


def refresh_statements(*, window: int = core.DEFAULT_WINDOW_DAYS) -> list[str]:
    """Create the schema and (re)create every view; run them in one transaction.

    Views are dropped and created rather than `CREATE OR REPLACE`d, since Postgres refuses
    a replacement whose columns differ (a definition that gained a column)."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"]
    for metric in VIEWS:
        out.append(f"DROP VIEW IF EXISTS {SCHEMA}.{metric}")
        out.append(f"CREATE VIEW {SCHEMA}.{metric} AS\n{view_sql(metric, window=window)}")
        out.append(
            f"COMMENT ON VIEW {SCHEMA}.{metric} IS "
            + _literal(
                f"insights metric '{metric}' (gameplay_analytics/insights/definitions.py), "
                f"whole store, every slice; estimator: {definitions.METRICS[metric].estimator}"
            )
        )
    return out


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
