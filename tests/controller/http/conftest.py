"""Fixtures of the HTTP API tests: the example mesh served by a real app (FastAPI's
TestClient calls it in-process; nothing is mocked), at a fixed time, and the same
mesh reconciled directly for cross-checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.core.parse import Manifests
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.http.app import create_app
from controller.http.source import StaticSource

REPO_EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# 22:00 UTC: the Californian cars are parked and online, the Seoul home clusters are not
AT = dt.datetime(2026, 11, 22, 22, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def source(examples: Manifests) -> StaticSource:
    return StaticSource(examples, AT)


@pytest.fixture(scope="session")
def direct(examples: Manifests) -> tuple[Snapshot, Outcome]:
    """The examples reconciled without the API."""
    snapshot = Snapshot(examples.factories, examples.fleets, examples.workloads, AT)
    return snapshot, reconcile(snapshot)


@pytest.fixture(scope="session")
def client(source: StaticSource) -> Iterator[TestClient]:
    with TestClient(create_app(source, long_poll_max_s=0.5)) as test_client:
        yield test_client
