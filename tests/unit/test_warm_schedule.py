"""The warm export's schedule (storage/warm_schedule.py): closed days at once, open days at
most every interval, never a day after today."""

from __future__ import annotations

import datetime as dt

from gameplay_analytics.runtime.storage import warm_schedule
from gameplay_analytics.runtime.storage.maintenance import OPEN_EXPORT_INTERVAL, MaintenancePolicy

D = dt.date(2025, 10, 1)
GRACE = dt.timedelta(hours=2)
HOUR = dt.timedelta(hours=1)


def at(day: dt.date, hour: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=hour)


def due(changed: dict[dt.date, bool], last: dict[dt.date, dt.datetime], now: dt.datetime,
        interval: dt.timedelta | None = HOUR) -> list[dt.date]:  # fmt: skip
    return warm_schedule.due_days(changed, last, now=now, grace=GRACE, open_interval=interval)


def test_the_default_is_hourly() -> None:
    assert OPEN_EXPORT_INTERVAL == HOUR == MaintenancePolicy().open_export_interval


def test_closed_days_go_as_soon_as_they_change() -> None:
    prev = D - dt.timedelta(days=1)
    now = at(D, 3)  # prev ended 3 h ago: closed
    assert due({prev: True}, {prev: now - dt.timedelta(minutes=1)}, now) == [prev]
    assert due({prev: False}, {}, now) == []
    assert due({prev: True}, {}, now, interval=None) == [prev]


def test_an_open_day_goes_at_most_every_interval() -> None:
    now = at(D, 10)
    assert due({D: True}, {}, now) == [D]  # never exported: at once
    assert due({D: True}, {D: now - dt.timedelta(minutes=59)}, now) == []
    assert due({D: True}, {D: now - HOUR}, now) == [D]
    assert due({D: False}, {D: now - 5 * HOUR}, now) == []  # unchanged: nothing to write
    assert due({D: True}, {}, now, interval=None) == []  # closed days only


def test_yesterday_within_the_grace_is_still_open() -> None:
    prev = D - dt.timedelta(days=1)
    now = at(D, 1)
    assert due({prev: True, D: True}, {prev: now - dt.timedelta(minutes=10)}, now) == [D]
    assert due({prev: True, D: True}, {prev: now - HOUR}, now) == [prev, D]


def test_a_day_after_today_waits() -> None:
    tomorrow = D + dt.timedelta(days=1)
    assert due({tomorrow: True}, {}, at(D, 23.9)) == []
    assert due({tomorrow: True}, {}, at(tomorrow, 0.1)) == [tomorrow]
