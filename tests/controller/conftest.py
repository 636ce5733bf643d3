"""Fixtures shared by the controller tests: the example mesh, parsed once."""

from __future__ import annotations

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
