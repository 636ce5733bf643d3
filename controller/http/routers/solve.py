"""``GET /api/v1/solve``: how the last solve went (status, objective, bound, gap, time)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from controller.http.deps import published
from controller.http.models import SolveView
from controller.http.source import Published
from controller.http.views import solve_view

router = APIRouter(tags=["solve"])


@router.get("/solve", response_model=SolveView, summary="The figures of the last solve")
def get_solve(current: Published = Depends(published)) -> SolveView:  # noqa: B008
    return solve_view(current.version, current.at, current.outcome, current.solve_ms, current.warm)
