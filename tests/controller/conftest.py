"""Fixtures shared by the controller tests: the example mesh, parsed once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli.files import load_manifests
from controller.core.parse import Manifests

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def examples() -> Manifests:
    loaded = load_manifests([REPO / "examples"])
    assert loaded.problems == []
    return loaded


@pytest.fixture(autouse=True)
def _collector_unfrozen() -> Iterator[None]:
    """A solve loop run in this process freezes the heap after each solve
    (``controller.operator.process.settle_heap``): unfreeze it after every test, so no
    test's objects stay frozen for the next."""
    yield
    gc.unfreeze()
