"""Dependencies shared by the routers: the published reconcile, or 503 before the first."""

from __future__ import annotations

from fastapi import HTTPException, Request

from controller.http.source import MeshSource, Published

NOT_YET = "no plan yet: the first solve has not finished"


def source(request: Request) -> MeshSource:
    found: MeshSource = request.app.state.source
    return found


def published(request: Request) -> Published:
    """The source's current publication; 503 (with Retry-After) before the first."""
    current = source(request).current()
    if current is None:
        raise HTTPException(503, NOT_YET, headers={"Retry-After": "1"})
    return current
