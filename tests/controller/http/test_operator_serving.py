"""The operator's side of the API without a cluster: the solve loop publishes each
solve as the API's source, the review authorizer's decisions and cache, the setting.

The authorizer's two API clients are replaced by recording doubles here (the seam to
the API server; tests/e2e/test_http_auth.py runs the real reviews against a real
kube-apiserver)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controller.core.parse import Manifests
from controller.http.app import create_app
from controller.http.security import Unauthenticated
from controller.operator.loop import SolveLoop
from controller.operator.reviews import ReviewAuthorizer
from controller.operator.settings import Settings, SettingsError
from controller.operator.sinks import Publisher, StatusSink
from controller.operator.state import MeshState
from controller.operator.writer import WriteStats

NIGHT = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)


def _loop(examples: Manifests) -> SolveLoop:
    state = MeshState()
    for index, resource in enumerate([*examples.factories, *examples.fleets, *examples.workloads]):
        body = resource.model_dump(by_alias=True, mode="json", exclude_none=True)
        body["metadata"].update({"generation": 1, "uid": f"uid-{index}"})
        state.observe(None, body)
    return SolveLoop(state, Settings(identity="test"), [StatusSink(lambda changes: WriteStats(), state), Publisher()],
                     now=lambda: NIGHT)


def test_each_solve_is_published_whole_with_a_new_version(examples: Manifests) -> None:
    loop = _loop(examples)
    assert loop.current() is None
    client = TestClient(create_app(loop))
    assert client.get("/api/v1/mesh").status_code == 503
    loop.solve_once()
    first = loop.current()
    assert first is not None and first.version == 1 and first.outcome is loop.outcome
    assert first.at == NIGHT and {w.key for w in first.snapshot.workloads} == set(first.outcome.workloads)
    loop.solve_once()
    second = loop.current()
    assert second is not None and second.version == 2 and second.warm and second is not first
    assert client.get("/api/v1/version", params={"after": 1}).json() == {"version": 2}
    body = client.get("/api/v1/workloads").json()
    assert body["version"] == 2 and len(body["items"]) == len(examples.workloads)


class _Reviews:
    """Stands in for AuthenticationV1Api and AuthorizationV1Api: tokens 'alice' and
    'bob' are valid, alice may list meshworkloads; 'down' fails like an unreachable server."""

    def __init__(self) -> None:
        self.token_reviews: list[str] = []
        self.access_reviews: list[Any] = []

    def create_token_review(self, body: Any, _request_timeout: float) -> Any:
        token = body.spec.token
        self.token_reviews.append(token)
        if token == "down":
            raise ConnectionError("API server unreachable")
        if token not in ("alice", "bob"):
            return SimpleNamespace(status=SimpleNamespace(authenticated=False, error="invalid bearer token", user=None))
        user = SimpleNamespace(username=f"user:{token}", groups=["system:authenticated"], uid=token, extra=None)
        return SimpleNamespace(status=SimpleNamespace(authenticated=True, error=None, user=user))

    def create_subject_access_review(self, body: Any, _request_timeout: float) -> Any:
        self.access_reviews.append(body.spec)
        allowed = body.spec.user == "user:alice"
        return SimpleNamespace(status=SimpleNamespace(allowed=allowed, reason=""))


@pytest.fixture
def reviews() -> _Reviews:
    return _Reviews()


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def authorizer(reviews: _Reviews, clock: list[float]) -> ReviewAuthorizer:
    authorizer = ReviewAuthorizer(client=None, clock=lambda: clock[0])
    authorizer._authn = authorizer._authz = reviews  # the seam: see the module docstring
    return authorizer


def test_the_review_asks_for_list_meshworkloads_cluster_wide(authorizer: ReviewAuthorizer, reviews: _Reviews) -> None:
    decision = authorizer.authorize("alice")
    assert decision.allowed and decision.user == "user:alice"
    spec = reviews.access_reviews[0]
    attributes = spec.resource_attributes
    assert (attributes.verb, attributes.group, attributes.resource, attributes.namespace) == (
        "list", "meshplane.io", "meshworkloads", None)
    assert spec.groups == ["system:authenticated"] and spec.uid == "alice"
    denied = authorizer.authorize("bob")
    assert not denied.allowed and denied.user == "user:bob" and denied.reason


def test_decisions_are_cached_for_10_s_by_token_hash(
    authorizer: ReviewAuthorizer, reviews: _Reviews, clock: list[float]
) -> None:
    for _ in range(5):
        assert authorizer.authorize("alice").allowed
        with pytest.raises(Unauthenticated, match="invalid bearer token"):
            authorizer.authorize("forged")
        clock[0] += 1.5
    assert reviews.token_reviews == ["alice", "forged"]
    assert all("alice" not in key and "forged" not in key for key in authorizer._cache)  # hashes only
    clock[0] += 10
    authorizer.authorize("alice")
    assert reviews.token_reviews == ["alice", "forged", "alice"]


def test_a_failed_review_is_raised_and_not_cached(authorizer: ReviewAuthorizer, reviews: _Reviews) -> None:
    for _ in range(2):
        with pytest.raises(ConnectionError):
            authorizer.authorize("down")
    assert reviews.token_reviews == ["down", "down"]


def test_the_api_port_setting() -> None:
    assert Settings().http_port == 8080
    assert Settings.from_env({"MESHPLANE_HTTP_PORT": "0"}).http_port == 0
    with pytest.raises(SettingsError, match="MESHPLANE_HTTP_PORT and MESHPLANE_HEALTH_PORT must differ"):
        Settings.from_env({"MESHPLANE_HTTP_PORT": "8081"})
    with pytest.raises(SettingsError, match="MESHPLANE_HTTP_PORT"):
        Settings.from_env({"MESHPLANE_HTTP_PORT": "70000"})
