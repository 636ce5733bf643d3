"""The mesh families of tests/support/meshes.py: every one is a mesh a user could apply
(``meshctl validate``'s parser finds no problem), each is deterministic in its seed, and
each has the shape its name promises (checked on the mesh itself, not the engine)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.parse import Manifests, parse_object
from placement.capacity import fleet_effective_devices
from tests.support.meshes import FAMILIES, family_mesh, synthetic_mesh, to_manifests, usable_token_supply


def _problems(objects: list[dict]) -> list[str]:
    manifests = Manifests()
    for index, obj in enumerate(objects):
        parse_object(obj, "family", index, manifests)
    return [str(p) for p in manifests.problems]


@settings(max_examples=28, deadline=None)
@given(family=st.sampled_from(FAMILIES), seed=st.integers(0, 2**32 - 1), workloads=st.integers(0, 80),
       sites=st.integers(1, 30))
def test_every_family_mesh_is_valid(family: str, seed: int, workloads: int, sites: int) -> None:
    mesh = family_mesh(family, workloads, sites, seed)
    assert len(mesh.workloads) == workloads
    assert len(mesh.factories) + len(mesh.fleets) == sites
    assert _problems(to_manifests(mesh)) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_mesh_and_seeds_differ(family: str) -> None:
    assert family_mesh(family, 40, 10, 3) == family_mesh(family, 40, 10, 3)
    assert family_mesh(family, 40, 10, 3) != family_mesh(family, 40, 10, 4)


def test_base_is_the_synthetic_mesh() -> None:
    assert family_mesh("base", 60, 12, 5) == synthetic_mesh(60, 12, seed=5)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mesh family"):
        family_mesh("nope", 1, 1)


def _demand(mesh) -> float:
    return sum(w.tokens_per_second or w.accelerators * 2400.0 for w in mesh.workloads)


def test_scarce_demand_is_twice_usable_supply_with_curtailment_and_offline_fleets() -> None:
    mesh = family_mesh("scarce", 300, 40, 1)
    assert _demand(mesh) == pytest.approx(2.0 * usable_token_supply(mesh), rel=0.05)
    curtailed = [f for f in mesh.factories if f.curtailed_mw > 0]
    assert len(curtailed) >= len(mesh.factories) // 2
    offline = [fl for fl in mesh.fleets if fleet_effective_devices(fl, mesh.at) == 0]
    assert len(mesh.fleets) // 2 <= len(offline) < len(mesh.fleets)


def test_shared_power_pools_compete_for_their_factory_power() -> None:
    mesh = family_mesh("shared-power", 100, 20, 2)
    assert len(mesh.factories) == 6
    for f in mesh.factories:
        assert 3 <= len(f.pools) <= 5
        usable_w = (f.firm_mw + max(0.0, f.flexible_mw - f.curtailed_mw)) * 1e6
        assert sum(p.count * p.watts_per_device * f.pue for p in f.pools) > 1.4 * usable_w


def test_gangs_share_one_priority_and_a_few_are_huge() -> None:
    mesh = family_mesh("gangs", 200, 30, 0)
    assert {w.priority for w in mesh.workloads} == {100}
    gangs = [w for w in mesh.workloads if w.type == "training"]
    assert len(gangs) == 8
    largest = max(p.count for f in mesh.factories for p in f.pools)
    assert all(g.accelerators >= 0.3 * largest - 1 for g in gangs)
    assert all(w.type == "inference" and w.tokens_per_second for w in mesh.workloads if w.type != "training")


def test_sovereignty_sets_are_tight() -> None:
    mesh = family_mesh("sovereignty", 200, 30, 0)
    assert all(1 <= len(w.allowed_countries) <= 4 for w in mesh.workloads)
    inference = [w for w in mesh.workloads if w.type == "inference"]
    assert all(w.max_latency_ms is not None and w.max_latency_ms <= 120 for w in inference)
    assert sum(len(w.users) == 2 for w in inference) > len(inference) // 3


@pytest.mark.parametrize(("family", "online"), [("night", True), ("day", False)])
def test_fleet_windows_contain_or_miss_the_plan_time(family: str, online: bool) -> None:
    mesh = family_mesh(family, 20, 30, 0)
    assert mesh.fleets
    for fl in mesh.fleets:
        devices = fleet_effective_devices(fl, mesh.at)
        expected = math.floor(fl.devices * fl.opt_in_ratio * fl.availability[0].online_ratio + 1e-6)
        assert devices == (expected if online else 0)
