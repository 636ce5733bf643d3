"""The example mesh as the core tests see it: parsed once, with a generation on every
object (as the API server sets it), and helpers to change it as a user would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.core.parse import Manifests
from controller.core.reconcile import Snapshot
from placement.problem import SolverConfig

PACIFIC = dt.timezone(dt.timedelta(hours=-8))
NIGHT_IN_CALIFORNIA = dt.datetime(2026, 11, 21, 23, 30, tzinfo=PACIFIC)
CONFIG = SolverConfig(num_workers=2, random_seed=0)


def with_generation(resource: Any, generation: int = 1) -> Any:
    return resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"generation": generation})})


def edit_spec(resource: Any, **spec: Any) -> Any:
    """A user's edit: new spec fields, generation + 1 (the stored status is kept)."""
    generation = (resource.metadata.generation or 0) + 1
    return with_generation(resource.model_copy(update={"spec": resource.spec.model_copy(update=spec)}), generation)


@pytest.fixture()
def night(examples: Manifests) -> Snapshot:
    """The example mesh at night in California, every object at generation 1, no status."""
    return Snapshot(
        [with_generation(f) for f in examples.factories],
        [with_generation(f) for f in examples.fleets],
        [with_generation(w) for w in examples.workloads],
        NIGHT_IN_CALIFORNIA,
    )
