"""When a warm-store day is due for export: a pure decision over the hot store's state and
the export ledger, shared by the events (`warm`) and the sessions (`warm_sessions`).

A *closed* day (it ended `grace` before now) is exported as soon as its hot rows differ from
what the ledger recorded. An *open* day (today, or yesterday within the grace) is exported
when it changed and its last export is `open_interval` old or more, so the warm store trails
the hot store by at most about that interval (PROTOCOL.md §3: at least hourly). Every export
of a day replaces or merges the day's one file by key, so exporting a day again never
duplicates a row: a late event lands exactly once whichever way its day was written before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

__all__ = ["closed_before", "due_days"]


def closed_before(now: dt.datetime, grace: dt.timedelta) -> dt.date:
    """The first day that is not closed yet at `now`."""
    return (now - grace).astimezone(dt.UTC).date()


def due_days(
    changed: Mapping[dt.date, bool],
    last_export: Mapping[dt.date, dt.datetime],
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    open_interval: dt.timedelta | None,
) -> list[dt.date]:
    """The days to export now, oldest first.

    `changed`: the days the hot store holds, each True when its rows differ from the
    ledger's record (or the ledger lacks it). `last_export`: when each day was last exported,
    on the same clock as `now`. `open_interval` None exports closed days only. A day after
    today (a client clock slightly ahead) waits until it is today.
    """
    first_open = closed_before(now, grace)
    today = now.astimezone(dt.UTC).date()
    due = []
    for day in sorted(changed):
        if not changed[day]:
            continue
        if day < first_open:
            due.append(day)
        elif open_interval is not None and day <= today:
            last = last_export.get(day)
            if last is None or now - last >= open_interval:
                due.append(day)
    return due
