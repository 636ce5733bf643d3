"""``GET /api/v1/workloads`` (filter by ``phase`` and ``namespace``) and
``GET /api/v1/workloads/{namespace}/{name}``: one workload with the explanation of
its placement (rejections per filter, feasible sites, candidates and their costs)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query

from controller.http.deps import published
from controller.http.models import ErrorView, WorkloadDetail, WorkloadList
from controller.http.source import Published
from controller.http.views import workload_detail, workload_views

router = APIRouter(tags=["workloads"])


@router.get("/workloads", response_model=WorkloadList, summary="Every workload, its phase and placement")
def list_workloads(
    current: Published = Depends(published),  # noqa: B008
    phase: str | None = Query(None, max_length=32, description="Only this phase (Placed, Unschedulable, ...)."),
    namespace: str | None = Query(None, max_length=63, description="Only this namespace."),
) -> WorkloadList:
    items = workload_views(current.snapshot, current.outcome, phase=phase, namespace=namespace)
    return WorkloadList(version=current.version, items=items)


@router.get(
    "/workloads/{namespace}/{name}", response_model=WorkloadDetail,
    responses={404: {"model": ErrorView, "description": "No such workload"}},
    summary="One workload and why it is placed where it is (or not at all)",
)
def get_workload(namespace: str, name: str, current: Published = Depends(published)) -> WorkloadDetail:  # noqa: B008
    key = f"{namespace}/{name}"
    workload = next((w for w in current.snapshot.workloads if w.key == key), None)
    if workload is None:
        raise HTTPException(404, f"no MeshWorkload {key}")
    return workload_detail(current, workload)
