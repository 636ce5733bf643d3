"""Auth, body limits and errors of the API.

The :class:`Authorizer` here is a test double at the protocol seam: the real one
(``controller.operator.reviews``) asks the API server, which these in-process tests do
not run; tests/e2e/test_http_auth.py checks it against a real kube-apiserver."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from controller.http.app import create_app
from controller.http.security import MAX_BODY_BYTES, Decision, Unauthenticated


class FakeAuthorizer:
    """'reader' may list, 'stranger' is a valid user without the right, 'broken' makes
    the authorizer fail (API server down); any other token is invalid."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def authorize(self, token: str) -> Decision:
        self.calls.append(token)
        if token == "broken":
            raise ConnectionError("API server unreachable")
        if token == "reader":
            return Decision(allowed=True, user="alice")
        if token == "stranger":
            return Decision(allowed=False, user="bob", reason="no RBAC rule allows it")
        raise Unauthenticated("token is not recognised")


@pytest.fixture
def authorizer() -> FakeAuthorizer:
    return FakeAuthorizer()


@pytest.fixture
def guarded(source, authorizer) -> TestClient:
    return TestClient(create_app(source, authorizer=authorizer))


API_CALLS = [("GET", "/api/v1/mesh"), ("GET", "/api/v1/workloads"), ("GET", "/api/v1/solve"),
             ("GET", "/api/v1/version"), ("GET", "/api/v1/workloads/serving/chat-us-west"),
             ("POST", "/api/v1/plan")]


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_no_token_is_401_with_a_bearer_challenge(guarded: TestClient, authorizer, method: str, path: str):
    response = guarded.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization" in response.json()["detail"]
    assert authorizer.calls == []


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_a_user_without_the_right_is_403_and_one_with_it_passes(guarded: TestClient, method: str, path: str):
    body = {"changes": []} if method == "POST" else None
    denied = guarded.request(method, path, json=body, headers={"Authorization": "Bearer stranger"})
    assert denied.status_code == 403 and "bob" in denied.json()["detail"]
    allowed = guarded.request(method, path, json=body, headers={"Authorization": "Bearer reader"})
    assert allowed.status_code == 200


def test_invalid_tokens_and_schemes_are_401(guarded: TestClient):
    for header in ("Bearer forged", "Basic YWxpY2U6cHc=", "Bearer ", "reader"):
        response = guarded.get("/api/v1/mesh", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_authorizer_that_cannot_answer_is_503(guarded: TestClient):
    response = guarded.get("/api/v1/mesh", headers={"Authorization": "Bearer broken"})
    assert response.status_code == 503 and response.json() == {"detail": "cannot check the token now; retry shortly"}


def test_static_files_and_the_openapi_document_need_no_token(guarded: TestClient):
    assert guarded.get("/").status_code == 200
    document = guarded.get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert document.json()["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_body_over_1_mib_is_413_with_or_without_content_length(client: TestClient):
    too_big = b"x" * (MAX_BODY_BYTES + 1)
    announced = client.post("/api/v1/plan", content=too_big, headers={"content-type": "application/json"})
    assert announced.status_code == 413 and "larger than" in announced.json()["detail"]
    assert announced.headers["x-content-type-options"] == "nosniff"

    def chunks():  # no Content-Length: sent chunked, counted as it arrives
        for start in range(0, len(too_big), 64 * 1024):
            yield too_big[start:start + 64 * 1024]

    streamed = client.post("/api/v1/plan", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    # exactly the limit passes the middleware (and is then a bad JSON body, not a 413)
    at_limit = client.post("/api/v1/plan", content=b" " * MAX_BODY_BYTES, headers={"content-type": "application/json"})
    assert at_limit.status_code == 422


class _Exploding:
    def current(self):
        raise RuntimeError("secret internals /etc/passwd")


def test_an_unexpected_error_is_a_bare_500_without_traceback(caplog):
    client = TestClient(create_app(_Exploding()), raise_server_exceptions=False)
    response = client.get("/api/v1/mesh")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert "Traceback" not in response.text and "secret" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert "secret internals" in caplog.text  # logged for the operator's logs instead


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/workloads/a", "/api/v1/plan"])
def test_other_errors_are_json_without_traceback(client: TestClient, path: str):
    response = client.get(path)
    assert response.status_code in (404, 405)
    assert set(response.json()) == {"detail"} and "Traceback" not in response.text
