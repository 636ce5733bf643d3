"""When the mesh changes by itself: the next moment a fleet's availability window opens
or closes.

Called by the operator's solve loop to wake at that moment (nothing in the API server
changes when parked cars come online at 22:00), and by tests with any clock. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from controller.api.resources import EdgeFleet

_HORIZON_DAYS = 2  # every daily window opens and closes within two local days


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def next_window_change(fleets: Iterable[EdgeFleet], after: dt.datetime) -> dt.datetime | None:
    """The first start or end of an availability window strictly after ``after`` (aware),
    over every fleet; None when no fleet has a window."""
    best: dt.datetime | None = None
    for fleet in fleets:
        for window in fleet.spec.availability:
            zone = ZoneInfo(window.timezone)
            local = after.astimezone(zone)
            for day in range(_HORIZON_DAYS):
                date = local.date() + dt.timedelta(days=day)
                for edge in (window.start, window.end):
                    moment = dt.datetime.combine(date, _clock(edge), tzinfo=zone)
                    if moment > after and (best is None or moment < best):
                        best = moment
    return best.astimezone(dt.UTC) if best is not None else None
