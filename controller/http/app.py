"""``create_app``: the FastAPI application that ``meshctl serve`` and the operator serve.

- ``/api/v1/...``: the routers of :mod:`controller.http.routers` (mesh, workloads,
  solve, what-if, version), each call passing :func:`~controller.http.security.require_user`;
- ``/api/v1/openapi.json``: the OpenAPI document (no interactive docs page: it would
  need inline script, which the CSP forbids);
- ``/`` and ``/static/...``: the dashboard's files from ``static_dir`` (no auth: they
  hold no data); a plain placeholder page while ``index.html`` is missing.

Every response carries the security headers; bodies over 1 MiB get 413; errors are
``{"detail": ...}`` (:mod:`controller.http.errors`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope

from controller.api.resources import API_VERSION
from controller.http import errors
from controller.http.models import ErrorView
from controller.http.routers import mesh, solve, stream, timeline, whatif, workloads
from controller.http.security import MAX_BODY_BYTES, Authorizer, BodyLimit, SecurityHeaders, require_user
from controller.http.source import MeshSource

STATIC_DIR = Path(__file__).with_name("static")
API_PREFIX = "/api/v1"
API_PREFIX_SLASH = "/api/"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
LONG_POLL_MAX_S = 30.0
# GET /api/v1/timeline plans the mesh at every wake-up of the day (~5 s at 1,000
# workloads): an operator publishing at every solve and readiness change recomputes it
# at most this often for the dashboards following it
TIMELINE_MAX_AGE_S = 30.0
TITLE = "meshplane API"
VERSION = "v1"

# what every /api/ call may answer besides its own responses
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorView, "description": "No valid bearer token (the operator only)"},
    403: {"model": ErrorView, "description": "The user may not list meshworkloads.meshplane.io"},
    413: {"model": ErrorView, "description": "The request body is larger than 1 MiB"},
    500: {"model": ErrorView, "description": "An unexpected error (logged; no detail is sent)"},
    503: {"model": ErrorView, "description": "No plan yet, or the token cannot be checked now"},
}

PLACEHOLDER = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshplane</title></head>
<body><h1>meshplane</h1><p>The dashboard's files are not installed. The API is at
<a href="/api/v1/mesh">/api/v1/mesh</a> (OpenAPI: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>).</p>
</body></html>
"""


def create_app(
    source: MeshSource,
    *,
    authorizer: Authorizer | None = None,
    static_dir: Path | None = STATIC_DIR,
    max_body_bytes: int = MAX_BODY_BYTES,
    long_poll_max_s: float = LONG_POLL_MAX_S,
    timeline_max_age_s: float = TIMELINE_MAX_AGE_S,
) -> FastAPI:
    """The app over ``source``; without ``authorizer`` every call is allowed (loopback only)."""
    app = FastAPI(
        title=TITLE, version=VERSION, openapi_url=OPENAPI_PATH, docs_url=None, redoc_url=None,
        description=f"Read the mesh and its plan, and ask what-if questions (resources {API_VERSION}). "
        "See docs/http-api.md.",
    )
    app.state.source = source
    app.state.authorizer = authorizer
    app.state.long_poll_max_s = long_poll_max_s
    app.state.timeline_cache = None  # the last timeline computed (routers/timeline.py)
    app.state.timeline_max_age_s = timeline_max_age_s
    errors.install(app)
    for module in (mesh, workloads, solve, timeline, whatif, stream):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=[Depends(require_user)],
                           responses=COMMON_RESPONSES)
    _static(app, static_dir)
    # outermost first: the headers cover the 413 too
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _static(app: FastAPI, static_dir: Path | None) -> None:
    index = static_dir / "index.html" if static_dir is not None else None

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        if index is not None and index.is_file():
            return FileResponse(index, media_type="text/html")
        return HTMLResponse(PLACEHOLDER)

    if static_dir is not None and static_dir.is_dir():
        files = StaticFiles(directory=static_dir)
        app.mount("/static", files, name="static")
        # index.html's relative links (app.js, vendor/...); never /api/, so a wrong method
        # there is the router's 405 and an unknown path its JSON 404
        app.router.routes.append(_NotApi("/", app=files, name="dashboard"))


class _NotApi(Mount):
    """A mount that leaves every ``/api/`` path to the API's routes."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if str(scope.get("path", "")).startswith(API_PREFIX_SLASH):
            return Match.NONE, {}
        return super().matches(scope)
