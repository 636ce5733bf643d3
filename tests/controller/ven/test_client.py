"""The VEN's OpenADR 3 client against VTNs that misbehave.

The real VTN (openleadr-vtn, tests/e2e/test_ven.py) answers well; a VTN that answers 500,
HTML, a half page, an object where a list belongs or a 401 for a token it issued cannot
be made from it, so those answers come from a stand-in at the client's transport seam
(``httpx.MockTransport``): a small VTN written here, paging as openleadr-vtn does
(``skip``/``limit``, 50 at most). Refused connections and a VTN that never answers are
real sockets.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from controller.ven.client import (
    PAGE_LIMIT,
    OpenAdrClient,
    OpenAdrError,
    VtnAuthError,
    VtnBadResponse,
    VtnHttpError,
    VtnNotFound,
    VtnUnreachable,
)

BASE = "http://vtn.test/openadr3/3.1.0"


class FakeVtn:
    """A VTN with ``events`` and ``programs``, tokens that expire when ``revoke()`` is called,
    and ``override`` answers by path."""

    def __init__(self, events: int = 0) -> None:
        self.events = [{"id": f"e{i}", "programID": "p1"} for i in range(events)]
        self.programs = [{"id": "p1", "programName": "dc-flex"}]
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.valid: set[str] = set()
        self.override: dict[str, Callable[[httpx.Request], httpx.Response]] = {}
        self.reports: dict[str, dict[str, Any]] = {}

    def revoke(self) -> None:
        self.valid.clear()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/openadr3/3.1.0")
        if path in self.override:
            return self.override[path](request)
        if path == "/auth/server":
            return httpx.Response(200, json={"tokenURL": "http://auth.test/token"})
        if request.url.host == "auth.test":
            basic = request.headers.get("Authorization", "")
            form = parse_qs(request.content.decode())
            if basic != "Basic " + base64.b64encode(b"ven:secret").decode() or form.get("grant_type") != [
                    "client_credentials"]:
                return httpx.Response(401, json={"error": "invalid_client"})
            self.tokens_issued += 1
            token = f"t{self.tokens_issued}"
            self.valid.add(token)
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json={"title": "Unauthorized", "detail": "bad token"})
        if path in ("/events", "/programs"):
            skip = int(request.url.params.get("skip", "0"))
            limit = int(request.url.params.get("limit", "50"))
            assert 1 <= limit <= 50
            items = self.events if path == "/events" else self.programs
            return httpx.Response(200, json=items[skip:skip + limit])
        if path.startswith("/events/"):
            found = [e for e in self.events if e["id"] == path.rsplit("/", 1)[1]]
            return httpx.Response(200, json=found[0]) if found else httpx.Response(
                404, json={"title": "Not Found", "detail": "no such event"})
        if path == "/reports" and request.method == "POST":
            report = {**httpx.Response(200, content=request.content).json(), "id": f"r{len(self.reports)}"}
            self.reports[report["id"]] = report
            return httpx.Response(201, json=report)
        if path.startswith("/reports/") and request.method == "PUT":
            report = {**httpx.Response(200, content=request.content).json(), "id": path.rsplit("/", 1)[1]}
            self.reports[report["id"]] = report
            return httpx.Response(200, json=report)
        return httpx.Response(404, json={"title": "Not Found"})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def client_of(vtn: FakeVtn, clock: Callable[[], float] | None = None, **kwargs: Any) -> OpenAdrClient:
    extra: dict[str, Any] = {"clock": clock} if clock else {}
    return OpenAdrClient(BASE, "ven", "secret", transport=httpx.MockTransport(vtn.handle), **extra, **kwargs)


def test_listings_are_read_page_by_page_until_a_short_page():
    vtn = FakeVtn(events=2 * PAGE_LIMIT + 7)

    async def go() -> list[dict[str, Any]]:
        async with client_of(vtn) as client:
            return await client.events()

    events = run(go())
    assert [e["id"] for e in events] == [f"e{i}" for i in range(2 * PAGE_LIMIT + 7)]
    pages = [(r.url.params["skip"], r.url.params["limit"]) for r in vtn.requests if r.url.path.endswith("/events")]
    assert pages == [("0", "50"), ("50", "50"), ("100", "50")]


def test_a_listing_of_exactly_full_pages_ends_with_an_empty_one():
    vtn = FakeVtn(events=PAGE_LIMIT)

    async def go() -> int:
        async with client_of(vtn) as client:
            return len(await client.events())

    assert run(go()) == PAGE_LIMIT
    assert sum(r.url.path.endswith("/events") for r in vtn.requests) == 2


def test_the_token_url_is_discovered_and_the_token_cached_until_it_expires():
    vtn = FakeVtn(events=1)
    now = [0.0]

    async def go() -> OpenAdrClient:
        async with client_of(vtn, clock=lambda: now[0]) as client:
            await client.programs()
            await client.events()
            now[0] = 3600 - 61  # a minute before expiry: still the cached token
            await client.events()
            now[0] = 3600 - 59  # within the margin: a new one
            await client.events()
            return client

    client = run(go())
    assert client.token_url == "http://auth.test/token"
    assert vtn.tokens_issued == client.tokens_fetched == 2
    assert sum(r.url.path == "/openadr3/3.1.0/auth/server" for r in vtn.requests) == 1


def test_a_401_with_a_cached_token_asks_for_a_new_one_once():
    vtn = FakeVtn(events=1)

    async def go() -> list[dict[str, Any]]:
        async with client_of(vtn, token_url="http://auth.test/token") as client:
            await client.events()
            vtn.revoke()  # e.g. the VTN restarted with a new signing key
            return await client.events()

    assert [e["id"] for e in run(go())] == ["e0"]
    assert vtn.tokens_issued == 2
    assert not any(r.url.path.endswith("/auth/server") for r in vtn.requests)  # configured: not discovered


def test_refused_credentials_and_a_refusing_vtn_are_auth_errors():
    vtn = FakeVtn()

    async def wrong_secret() -> None:
        async with OpenAdrClient(BASE, "ven", "wrong", transport=httpx.MockTransport(vtn.handle)) as client:
            await client.programs()

    with pytest.raises(VtnAuthError, match="invalid_client"):
        run(wrong_secret())
    vtn.override["/programs"] = lambda _: httpx.Response(403, json={"title": "Forbidden",
                                                                     "detail": "Missing 'read_targets' scope"})

    async def forbidden() -> None:
        async with client_of(vtn) as client:
            await client.programs()

    with pytest.raises(VtnAuthError, match="read_targets"):
        run(forbidden())


@pytest.mark.parametrize(("answer", "error", "says"), [
    (httpx.Response(500, json={"title": "Internal Server Error", "detail": "database down"}), VtnHttpError,
     "HTTP 500: Internal Server Error: database down"),
    (httpx.Response(503, text="<html>maintenance</html>"), VtnHttpError, "HTTP 503: <html>maintenance"),
    (httpx.Response(200, text="<html>a login page</html>"), VtnBadResponse, "not JSON"),
    (httpx.Response(200, json={"events": []}), VtnBadResponse, "not a list"),
    (httpx.Response(200, json=[{"id": "e0"}, "e1"]), VtnBadResponse, "item 1 is not an object"),
])
def test_bad_answers_are_typed_errors(answer: httpx.Response, error: type[Exception], says: str):
    vtn = FakeVtn()
    vtn.override["/events"] = lambda _: answer

    async def go() -> None:
        async with client_of(vtn) as client:
            await client.events()

    with pytest.raises(error, match=says) as raised:
        run(go())
    assert isinstance(raised.value, OpenAdrError)


def test_an_event_gone_is_not_found_and_one_there_is_read():
    vtn = FakeVtn(events=1)

    async def go() -> dict[str, Any]:
        async with client_of(vtn) as client:
            with pytest.raises(VtnNotFound) as gone:
                await client.event("nope")
            assert gone.value.status == 404
            return await client.event("e0")

    assert run(go())["id"] == "e0"


def test_reports_are_posted():
    vtn = FakeVtn()

    async def go() -> dict[str, Any]:
        async with client_of(vtn) as client:
            return await client.post_report({"eventID": "e0", "clientName": "meshplane", "resources": []})

    posted = run(go())
    assert posted["id"] == "r0" and posted["eventID"] == "e0"
    assert vtn.reports == {"r0": posted}


# --------------------------------------------------------------------------- real sockets


def test_a_vtn_that_is_down_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free again once closed: nothing listens there

    async def go() -> None:
        async with OpenAdrClient(f"http://127.0.0.1:{port}", "ven", "secret",
                                 token_url=f"http://127.0.0.1:{port}/token") as client:
            await client.events()

    with pytest.raises(VtnUnreachable, match="ConnectError"):
        run(go())


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a hung VTN)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_vtn_that_never_answers_times_out_as_unreachable(silent_server: int):
    async def go() -> None:
        async with OpenAdrClient(f"http://127.0.0.1:{silent_server}", "ven", "secret", timeout_s=0.3) as client:
            await client.events()

    with pytest.raises(VtnUnreachable, match="timed out"):
        run(go())
