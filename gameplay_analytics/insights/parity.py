"""The parity report: client vs server counts per event per day (`insights parity`).

A game server's `ServerEmitter` stores its authoritative events with `source = server`; the
same events tracked by the clients are `source = client`. For every event name the servers
emitted in the range, each day's two counts side by side show the client events that never
arrived (`missing_client`). Counts are stored rows, not sample-weighted: both sides are
sampled by the same per-player cohorts, so the gap is the loss, not the sampling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from gameplay_analytics.insights.core import Params, Result
from gameplay_analytics.insights.stores import Store

__all__ = ["PARITY_SQL", "parity", "shape_parity"]

# `source` is null in warm files written before the column existed: those rows are clients'.
PARITY_SQL: Final = """
WITH ranged AS (
    SELECT event_day, event_name, coalesce(source, 'client') AS source
    FROM analytics_events
    WHERE ($1::date IS NULL OR event_day >= $1::date)
      AND ($2::date IS NULL OR event_day <= $2::date)
)
SELECT event_day AS day, event_name AS event,
       count(*) FILTER (WHERE source = 'client') AS client,
       count(*) FILTER (WHERE source = 'server') AS server
FROM ranged
WHERE event_name IN (SELECT DISTINCT event_name FROM ranged WHERE source = 'server')
GROUP BY event_day, event_name
ORDER BY event_day, event_name
"""


def parity(store: Store, date_from: dt.date | None, date_to: dt.date | None) -> Result:
    """Run the report on `store` (hot or warm)."""
    params = Params(store=store.name, date_from=date_from, date_to=date_to)
    raw = store.fetch(PARITY_SQL, [date_from, date_to])
    return Result("parity", params.as_json("parity"), shape_parity(raw))


def shape_parity(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the gap and the client's share of the server's count. Pure."""
    rows = []
    for r in raw:
        client, server = int(r["client"]), int(r["server"])
        day = r["day"]
        rows.append(
            {
                "day": day.isoformat() if isinstance(day, dt.date) else str(day),
                "event": r["event"],
                "client": client,
                "server": server,
                "missing_client": max(server - client, 0),
                "client_share": round(client / server, 6) if server else None,
            }
        )
    return rows
