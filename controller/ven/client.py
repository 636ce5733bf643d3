"""A thin async OpenADR 3 client (VEN side) on httpx: what ``meshplane-ven`` needs, nothing more.

- **Auth**: OAuth2 client credentials (RFC 6749 4.4): ``POST`` to the token URL with
  ``grant_type=client_credentials`` (and ``scope`` when set), the client ID and secret
  in an HTTP Basic header. Without a configured token URL, the VTN is asked for it
  (OpenADR 3.1: ``GET /auth/server`` answers ``{"tokenURL": ...}``). The token is
  cached until shortly before ``expires_in`` (a tenth of its life, at most 60 s); a 401
  on a call drops it and the call is tried once more with a new one.
- **Reads**: ``programs()``, ``events()`` (paged with ``skip``/``limit``, 50 a page, the
  most openleadr-vtn serves, until a short page), ``event(id)``, ``reports(...)``.
- **Writes**: ``post_report()`` (``POST /reports``): one report per ended interval, never replaced.
- **Errors** are typed, so the caller can tell what happened without parsing text:
  :class:`VtnUnreachable` (connection, timeout), :class:`VtnAuthError` (the token
  endpoint refused the credentials, or the VTN a fresh token: 401/403),
  :class:`VtnNotFound` (404), :class:`VtnHttpError` (any other non-2xx, with the
  status and the Problem's ``title``/``detail``), :class:`VtnBadResponse` (not JSON,
  or not the shape asked for). All derive from :class:`OpenAdrError`. Nothing else
  escapes a call.

No other OpenADR library is used: the JSON objects are returned as they are, and
:mod:`controller.core.openadr` reads them defensively.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger("meshplane.ven.client")

PAGE_LIMIT = 50  # openleadr-vtn refuses limit > 50
MAX_PAGES = 2_000  # 100,000 objects: a VTN that never ends a listing is an error, not a hang
TOKEN_MARGIN_S = 60.0


class OpenAdrError(Exception):
    """Any failure of a call to the VTN or its token endpoint."""


class VtnUnreachable(OpenAdrError):
    """No answer: connection refused or reset, DNS, TLS, timeout."""


class VtnAuthError(OpenAdrError):
    """The credentials or the token were refused (401/403, or an OAuth2 error)."""


class VtnBadResponse(OpenAdrError):
    """An answer that is not JSON, or not the shape asked for."""


class VtnHttpError(OpenAdrError):
    """A non-2xx answer other than 401/403 (``status``; ``detail`` from the Problem body)."""

    def __init__(self, method: str, url: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status}{': ' + detail if detail else ''}")
        self.status = status
        self.detail = detail


class VtnNotFound(VtnHttpError):
    """404: the object is not there (or not visible to this VEN)."""


def _problem(response: httpx.Response) -> str:
    """``title: detail`` of an RFC 7807 Problem (or an OAuth2 error), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, Mapping):
        parts = [str(body[k]) for k in ("title", "detail", "error", "error_description") if body.get(k)]
        if parts:
            return ": ".join(parts)[:500]
    return response.text[:200]


class OpenAdrClient:
    """One VTN, one set of client credentials. Use as ``async with OpenAdrClient(...) as c``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        token_url: str = "",
        scope: str = "",
        timeout_s: float = 10.0,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._clock = clock
        self._http = httpx.AsyncClient(timeout=timeout_s, verify=verify, transport=transport,
                                       headers={"Accept": "application/json"})
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0  # how many tokens were asked for (the cache's hit rate, for tests and logs)

    async def __aenter__(self) -> OpenAdrClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ auth

    async def discover_token_url(self) -> str:
        """The token URL the VTN names (OpenADR 3.1 ``GET /auth/server``)."""
        url = f"{self.base_url}/auth/server"
        response = await self._send("GET", url)
        if response.status_code != 200:
            raise self._error("GET", url, response)
        body = self._json(response, url)
        token_url = body.get("tokenURL") if isinstance(body, Mapping) else None
        if not isinstance(token_url, str) or not token_url:
            raise VtnBadResponse(f"GET {url}: no tokenURL in the answer")
        return token_url

    async def token(self) -> str:
        """A bearer token: the cached one while it is valid, else a new one."""
        async with self._token_lock:
            if self._token is not None and self._clock() < self._token_until:
                return self._token
            if not self.token_url:
                self.token_url = await self.discover_token_url()
                log.info("the VTN names its token endpoint: %s", self.token_url)
            form = {"grant_type": "client_credentials"}
            if self._scope:
                form["scope"] = self._scope
            basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()
            response = await self._send("POST", self.token_url, data=form, headers={"Authorization": f"Basic {basic}"})
            if response.status_code in (400, 401, 403):
                raise VtnAuthError(f"POST {self.token_url}: HTTP {response.status_code}: {_problem(response)}")
            if response.status_code != 200:
                raise self._error("POST", self.token_url, response)
            body = self._json(response, self.token_url)
            token = body.get("access_token") if isinstance(body, Mapping) else None
            if not isinstance(token, str) or not token:
                raise VtnBadResponse(f"POST {self.token_url}: no access_token in the answer")
            lifetime = body.get("expires_in")
            life = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300.0
            self._token = token
            self._token_until = self._clock() + life - min(TOKEN_MARGIN_S, life / 10)
            self.tokens_fetched += 1
            return token

    def forget_token(self) -> None:
        self._token = None

    # ------------------------------------------------------------------ reads

    async def programs(self) -> list[dict[str, Any]]:
        return await self._paged("/programs", {})

    async def events(self, program_id: str | None = None) -> list[dict[str, Any]]:
        return await self._paged("/events", {"programID": program_id} if program_id else {})

    async def event(self, event_id: str) -> dict[str, Any]:
        """``GET /events/{id}``; :class:`VtnNotFound` when it is gone (or not for this VEN)."""
        path = f"/events/{quote(event_id, safe='')}"
        return self._object(await self._call("GET", path), path)

    async def reports(self, event_id: str | None = None, client_name: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("eventID", event_id), ("clientName", client_name)) if v}
        return await self._paged("/reports", params)

    # ------------------------------------------------------------------ writes

    async def post_report(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /reports``: the report as the VTN stored it (with its ``id``)."""
        return self._object(await self._call("POST", "/reports", json=report), "/reports")

    # ------------------------------------------------------------------ plumbing

    async def _paged(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            got = await self._call("GET", path, params={**params, "skip": str(page * PAGE_LIMIT),
                                                         "limit": str(PAGE_LIMIT)})
            if not isinstance(got, list):
                raise VtnBadResponse(f"GET {self.base_url}{path}: not a list")
            for index, item in enumerate(got):
                if not isinstance(item, dict):
                    raise VtnBadResponse(f"GET {self.base_url}{path}: item {page * PAGE_LIMIT + index} is not an object")
            items += got
            if len(got) < PAGE_LIMIT:
                return items
        raise VtnBadResponse(f"GET {self.base_url}{path}: more than {MAX_PAGES} pages")

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    json: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            token = await self.token()
            response = await self._send(method, url, params=params, json=json,
                                        headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401 and attempt == 1:
                log.info("%s %s: 401 with a cached token; asking for a new one", method, url)
                self.forget_token()
                continue
            if not 200 <= response.status_code < 300:
                raise self._error(method, url, response)
            return self._json(response, url)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise VtnUnreachable(f"{method} {url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise VtnUnreachable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:  # an invalid URL, say
            raise OpenAdrError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _error(method: str, url: str, response: httpx.Response) -> OpenAdrError:
        status = response.status_code
        if status in (401, 403):
            return VtnAuthError(f"{method} {url}: HTTP {status}: {_problem(response)}")
        if status == 404:
            return VtnNotFound(method, url, status, _problem(response))
        return VtnHttpError(method, url, status, _problem(response))

    @staticmethod
    def _json(response: httpx.Response, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise VtnBadResponse(f"{url}: HTTP {response.status_code} with a body that is not JSON") from None

    def _object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise VtnBadResponse(f"{self.base_url}{path}: not an object")
        return value


__all__ = [
    "OpenAdrClient",
    "OpenAdrError",
    "VtnAuthError",
    "VtnBadResponse",
    "VtnHttpError",
    "VtnNotFound",
    "VtnUnreachable",
]
