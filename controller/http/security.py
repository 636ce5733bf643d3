"""Who may read the API, and what every response carries.

- :class:`Authorizer`: the protocol the operator implements with TokenReview and
  SubjectAccessReview (``controller.operator.reviews``); ``authorize(token)`` returns a
  :class:`Decision` or raises :class:`Unauthenticated` for a token that is not valid.
  :func:`require_user` is the dependency every ``/api/`` route has: no authorizer
  (``meshctl serve`` on loopback) lets every call through; otherwise no or a malformed
  ``Authorization: Bearer`` header and an invalid token give 401 with
  ``WWW-Authenticate: Bearer``, a denied user 403, an authorizer that cannot answer
  (API server unreachable) 503.
- :class:`SecurityHeaders`: a strict Content-Security-Policy (no inline script or
  style: the dashboard ships files), ``nosniff``, ``no-referrer`` on every response,
  and ``Cache-Control: no-store`` on the API's.
- :class:`BodyLimit`: a request body over the limit is answered 413 before the app
  sees it, whether it announces its length or streams it in chunks.

Both middlewares are plain ASGI (no ``BaseHTTPMiddleware``), so the long-poll and
static files stream through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger("meshplane.http")

MAX_BODY_BYTES = 1024 * 1024
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Decision:
    """Whether ``user`` may read the mesh, and why not."""

    allowed: bool
    user: str
    reason: str = ""


class Unauthenticated(Exception):
    """The token is not valid (expired, unknown, for another audience): 401."""


class Authorizer(Protocol):
    def authorize(self, token: str) -> Decision:
        """Decide for a bearer token; raise :class:`Unauthenticated` if it is not valid."""
        ...


_bearer = HTTPBearer(auto_error=False, description="A Kubernetes token (e.g. `kubectl create token`); "
                     "the user needs `list` on meshworkloads.meshplane.io cluster-wide.")


async def require_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)  # noqa: B008
) -> str:
    """The dependency of every ``/api/`` route: the user name, or 401/403/503."""
    authorizer: Authorizer | None = request.app.state.authorizer
    if authorizer is None:
        return "anonymous"
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, "an Authorization: Bearer <token> header is required", headers=CHALLENGE)
    try:
        decision = await run_in_threadpool(authorizer.authorize, credentials.credentials.strip())
    except Unauthenticated as exc:
        raise HTTPException(401, f"the token is not valid: {exc}", headers=CHALLENGE) from None
    except Exception:
        log.exception("authorizing a request failed")
        raise HTTPException(503, "cannot check the token now; retry shortly") from None
    if not decision.allowed:
        raise HTTPException(403, f"{decision.user} may not list meshworkloads.meshplane.io: "
                                 f"{decision.reason or 'denied'}")
    return decision.user


def _json_response(status: int, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    start = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
    ]}
    return start, {"type": "http.response.body", "body": body}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response (and no-store to the API's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode().lower() not in {name.lower() for name, _ in SECURITY_HEADERS}]
                headers += [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 for a body over ``max_bytes``: read whole (up to the limit) before the app runs,
    then replayed to it, so a chunked body without Content-Length is counted too."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        start, body = _json_response(413, f"the request body is larger than {self.max_bytes:,} bytes")
        await send(start)
        await send(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.max_bytes:
                    await self._reject(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                chunks_done: list[Message] = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                chunks_done = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break
        pending = list(chunks_done)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)
