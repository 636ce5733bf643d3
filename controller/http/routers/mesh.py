"""``GET /api/v1/mesh``: every site with its power, pools, online devices (fleets, now
and the next 24 hours), conditions, and the links and user regions of the topology."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from controller.http.deps import published
from controller.http.models import MeshView
from controller.http.source import Published
from controller.http.views import mesh_view

router = APIRouter(tags=["mesh"])


@router.get("/mesh", response_model=MeshView, summary="The sites, their power and devices, and the topology")
def get_mesh(current: Published = Depends(published)) -> MeshView:  # noqa: B008
    return mesh_view(current)
