"""Error responses: every error is JSON ``{"detail": "..."}``, never a traceback.

- an ``HTTPException`` (ours, or Starlette's 404/405) keeps its status, detail and headers;
- FastAPI's request validation stays its standard 422 document (JSON, ``detail`` a list
  naming each field), so clients see which field failed;
- anything else is logged with its traceback and answered ``500 {"detail": "internal
  error"}``. That answer is sent by Starlette's outermost middleware, outside our own,
  so it carries the security headers itself.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.http.security import SECURITY_HEADERS

log = logging.getLogger("meshplane.http")

INTERNAL_ERROR = "internal error"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # nosec B101  # registered for this type only
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500, headers=dict(SECURITY_HEADERS))


def install(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
