"""The synthetic meshes of tests/support (used by the benchmarks and property tests) are
meshes a user could apply: ``meshctl validate`` accepts every one of them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.parse import Manifests, parse_object
from tests.support.meshes import synthetic_mesh, to_manifests


def _problems(objects: list[dict]) -> list[str]:
    manifests = Manifests()
    for index, obj in enumerate(objects):
        parse_object(obj, "synthetic", index, manifests)
    return [str(p) for p in manifests.problems]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), workloads=st.integers(0, 120), sites=st.integers(1, 40))
def test_every_synthetic_mesh_is_valid(seed: int, workloads: int, sites: int) -> None:
    assert _problems(to_manifests(synthetic_mesh(workloads, sites, seed=seed))) == []


def test_the_benchmark_meshes_are_valid() -> None:
    mesh = synthetic_mesh(1000, 100, seed=0)
    objects = to_manifests(mesh)
    assert len(objects) == 1100
    assert _problems(objects) == []
