"""``GET /api/v1/version``: the version of the last outcome, optionally long-polled.

How the dashboard follows the mesh live (long-poll, not Server-Sent Events: a browser's
``EventSource`` cannot send the ``Authorization`` header the operator requires):

    GET /api/v1/version              -> {"version": N} at once (0 before the first solve)
    GET /api/v1/version?after=N      -> waits until the version is > N, then answers
                                        {"version": M}; after ``wait`` seconds (default 25,
                                        at most the server's limit, 30 by default) it
                                        answers with the unchanged version N instead.

A client loops: ``v = (await get(`/api/v1/version?after=${v}`)).version``, and re-reads
``/mesh``, ``/workloads`` and ``/solve`` whenever ``v`` changed. The server checks
the source every 0.25 s, so a new outcome is seen within that time.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Query, Request

from controller.http.deps import source
from controller.http.models import VersionView
from controller.http.source import MeshSource

router = APIRouter(tags=["stream"])

POLL_S = 0.25
DEFAULT_WAIT_S = 25.0


def _version(mesh: MeshSource) -> int:
    current = mesh.current()
    return current.version if current is not None else 0


@router.get("/version", response_model=VersionView, summary="The outcome's version; long-poll with ?after=N")
async def get_version(
    request: Request,
    mesh: MeshSource = Depends(source),  # noqa: B008
    after: int | None = Query(None, ge=0, description="Wait until the version is greater than this."),
    wait: float = Query(DEFAULT_WAIT_S, ge=0, le=300, description="Seconds to wait at most (capped by the server)."),
) -> VersionView:
    version = _version(mesh)
    if after is None or version > after:
        return VersionView(version=version)
    deadline = time.monotonic() + min(wait, request.app.state.long_poll_max_s)
    while time.monotonic() < deadline:
        await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        version = _version(mesh)
        if version > after or await request.is_disconnected():
            break
    return VersionView(version=version)
