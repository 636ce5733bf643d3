"""What one explanation costs: ``GET /api/v1/workloads/{namespace}/{name}`` builds the
engine's snapshot of every site and that one workload, not of the whole mesh, and
answers what the whole mesh's verdicts say."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import placement.explain
from controller.core.explanations import plan_mesh
from controller.http.source import StaticSource
from placement.problem import Mesh
from placement.snapshot import Snapshot as EngineSnapshot


@pytest.mark.parametrize("key", ["serving/chat-us-west", "serving/japan-medical-llm", "research/frontier-pretrain"])
def test_an_explanation_builds_the_snapshot_of_one_workload_not_the_mesh(
    client: TestClient, source: StaticSource, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A seam check: it spies on ``placement.explain.build`` (the name through which
    ``column_verdicts``, called by ``controller.core.explanations``, builds the engine's
    snapshot), so it proves what that call is given, not the time a request takes
    (``docs/http-api.md`` gives the measured figures). Were the explanation computed
    another way, the spy would see no call and the test would fail, not pass."""
    built: list[Mesh] = []
    real = placement.explain.build

    def spy(mesh: Mesh, *args: Any, **kwargs: Any) -> EngineSnapshot:
        built.append(mesh)
        return real(mesh, *args, **kwargs)

    monkeypatch.setattr(placement.explain, "build", spy)
    namespace, name = key.split("/")
    body = client.get(f"/api/v1/workloads/{namespace}/{name}").json()
    published = source.current()
    assert published is not None
    assert len(published.snapshot.workloads) > 1
    [mesh] = built
    assert [w.key for w in mesh.workloads] == [key]
    everything = plan_mesh(published.snapshot, published.snapshot.workloads)
    assert (mesh.factories, mesh.fleets, mesh.at) == (everything.factories, everything.fleets, everything.at)
    # and the answer is the whole mesh's
    feasible = [v for v in placement.explain.column_verdicts(everything, key, published.config) if not v.rejected_by]
    assert sorted((c["site"], c["acceleratorModel"], c["cost"]) for c in body["explanation"]["candidates"]) == sorted(
        (v.site, v.accelerator_model, v.cost) for v in feasible
    )
