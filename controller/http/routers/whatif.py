"""``POST /api/v1/plan``: a what-if question about the published mesh.

The body names changes (text ``"curtail us-memphis-1=200"``, or scheduled ``"curtail
us-memphis-1=200 from 2026-07-14T18:00:00Z for 3h"``, or JSON ``{op, target, value,
from, for}``), optional extra manifests (added, or replacing objects of the same kind and
name) and an optional time. :func:`controller.core.whatif.what_if` reconciles a COPY of
the published snapshot with them and diffs it against the published outcome: nothing is
written anywhere, and the published mesh is unchanged. A bad change or manifest is a
400 with one line naming it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from controller.core.parse import parse_objects
from controller.core.whatif import Change, WhatIfError, apply_changes, change_from_dict, parse_change, what_if
from controller.http.deps import published
from controller.http.models import ChangeIn, ErrorView, PlanRequest, PlanResponse, PlanView
from controller.http.source import Published
from controller.http.views import site_views, solve_view, workload_views

router = APIRouter(tags=["what-if"])

MAX_PROBLEMS_SHOWN = 3


def _changes(request: PlanRequest) -> list[Change]:
    changes: list[Change] = []
    for item in request.changes:
        if isinstance(item, ChangeIn):
            document: dict[str, Any] = {"op": item.op, "target": item.target, "value": item.value}
            if item.start is not None or item.duration is not None:
                document.update({"from": item.start, "for": item.duration})
            changes.append(change_from_dict(document))
        else:
            changes.append(parse_change(item))
    if request.at is not None:
        changes.append(change_from_dict({"op": "clock", "value": request.at}))
    return changes


@router.post(
    "/plan", response_model=PlanResponse,
    responses={400: {"model": ErrorView, "description": "A change or manifest that cannot be applied"}},
    summary="Plan the published mesh with changes, and what would move",
)
def post_plan(request: PlanRequest, current: Published = Depends(published)) -> PlanResponse:  # noqa: B008
    try:
        changes = _changes(request)
    except WhatIfError as exc:
        raise HTTPException(400, str(exc)) from None
    add = None
    if request.manifests:
        add = parse_objects(request.manifests, "manifests")
        if add.problems:
            shown = "; ".join(str(p) for p in add.problems[:MAX_PROBLEMS_SHOWN])
            more = len(add.problems) - MAX_PROBLEMS_SHOWN
            raise HTTPException(400, shown + (f"; and {more} more" if more > 0 else ""))
    started = time.perf_counter()
    try:
        # the changed copy, for the specs the views show (what_if reconciles its own copy)
        changed = apply_changes(current.snapshot, changes, add)
        outcome, diff = what_if(current.snapshot, changes, current.config, add=add, current=current.outcome)
    except WhatIfError as exc:
        raise HTTPException(400, str(exc)) from None
    solve_ms = (time.perf_counter() - started) * 1e3
    plan = PlanView(
        workloads=workload_views(changed, outcome),
        sites=site_views(changed, outcome),
        solve=solve_view(current.version, changed.at, outcome, solve_ms, warm=True),
    )
    return PlanResponse(plan=plan, diff=diff.to_dict())
