"""``GET /api/v1/timeline?hours=24``: usable power, allocation and planned moves at every
instant the operator will wake at within the horizon (grid events, fleet windows)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query, Request

from controller.http.deps import published
from controller.http.models import TimelineView
from controller.http.source import Published
from controller.http.timeline import planned_timeline

router = APIRouter(tags=["timeline"])
_CACHE_LOCK = threading.Lock()
# one computation at a time: a second request for the same publication waits for the
# first instead of planning the day again (each one plans the mesh at every wake-up)
_COMPUTE_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Cached:
    version: int
    hours: float
    computed_at: float  # time.monotonic()
    view: TimelineView


@router.get("/timeline", response_model=TimelineView, summary="The next hours: power, allocation, planned moves")
def get_timeline(
    request: Request,
    hours: float = Query(24.0, gt=0, le=72, description="Horizon, in hours (at most 72)."),
    current: Published = Depends(published),  # noqa: B008
) -> TimelineView:
    """Planned once per published plan and horizon, and at most once every 30 s however
    often the plan is published (the operator publishes at every solve and readiness
    change): ``start`` says which instant it was planned from."""
    max_age_s: float = request.app.state.timeline_max_age_s

    def fresh(entry: _Cached | None) -> TimelineView | None:
        if entry is None or entry.hours != hours:
            return None
        young = time.monotonic() - entry.computed_at < max_age_s
        return entry.view if entry.version == current.version or young else None

    with _CACHE_LOCK:
        found = fresh(request.app.state.timeline_cache)
    if found is not None:
        return found
    with _COMPUTE_LOCK:
        with _CACHE_LOCK:
            found = fresh(request.app.state.timeline_cache)
        if found is None:
            found = planned_timeline(current.snapshot, current.outcome, current.config, hours)
            with _CACHE_LOCK:  # only the latest is asked for
                request.app.state.timeline_cache = _Cached(current.version, hours, time.monotonic(), found)
    return found
