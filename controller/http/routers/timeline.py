"""``GET /api/v1/timeline?hours=24``: usable power, allocation and planned moves at every
instant the operator will wake at within the horizon (grid events, fleet windows)."""

from __future__ import annotations

import threading

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


@router.get("/timeline", response_model=TimelineView, summary="The next hours: power, allocation, planned moves")
def get_timeline(
    request: Request,
    hours: float = Query(24.0, gt=0, le=72, description="Horizon, in hours (at most 72)."),
    current: Published = Depends(published),  # noqa: B008
) -> TimelineView:
    # one plan per wake-up: computed once per publication and horizon
    key = (current.version, hours)
    with _CACHE_LOCK:
        cache: dict[tuple[int, float], TimelineView] = request.app.state.timeline_cache
        found = cache.get(key)
    if found is not None:
        return found
    with _COMPUTE_LOCK:
        with _CACHE_LOCK:
            found = cache.get(key)
        if found is None:
            found = planned_timeline(current.snapshot, current.outcome, current.config, hours)
            with _CACHE_LOCK:
                cache.clear()  # only the latest publication is asked for
                cache[key] = found
    return found
