"""maxSites counts SITES, as the CRD says: two accelerator pools of one factory are
one site (CP-SAT model, plan checker, reasons)."""

from __future__ import annotations

import placement
from placement import AcceleratorPool, FactorySite, Mesh, SolverConfig, WorkloadDemand
from tests.support.invariants import check_plan

CONFIG = SolverConfig(num_workers=1)


def factory(name, *pools, price=0.0):
    return FactorySite(name=name, region="r", country="US", firm_mw=10.0, pue=1.0, price_per_mwh=price,
                       pools=tuple(pools))


def test_two_pools_of_one_factory_are_one_site():
    two_pools = factory("two-pools", AcceleratorPool("h100", 6, 700.0, 2400.0, 80.0),
                        AcceleratorPool("h200", 6, 700.0, 3000.0, 141.0))
    other = factory("other", AcceleratorPool("h100", 6, 700.0, 2400.0, 80.0), price=50.0)
    w = WorkloadDemand(key="a/inf", accelerators=16, splittable=True, max_sites=2)
    mesh = Mesh(factories=(two_pools, other), workloads=(w,))
    p = placement.plan(mesh, CONFIG)
    check_plan(mesh, p)
    d = p.workloads["a/inf"]
    # 16 devices need three pools: possible only because the two pools are one site
    assert d.phase == "Placed" and d.devices == 16
    assert len(d.assignments) == 3
    assert set(d.sites) == {"two-pools", "other"}


def test_three_single_pool_sites_are_three_sites():
    sites = tuple(factory(f"f{i}", AcceleratorPool("h100", 6, 700.0, 2400.0, 80.0)) for i in range(3))
    w = WorkloadDemand(key="a/inf", accelerators=16, splittable=True, max_sites=2)
    mesh = Mesh(factories=sites, workloads=(w,))
    p = placement.plan(mesh, CONFIG)
    check_plan(mesh, p)
    d = p.workloads["a/inf"]
    assert d.phase == "Unschedulable"
    assert d.message == "needs 16 devices; the best 2 of its 3 feasible sites (maxSites 2) have at most 12"


def test_token_demand_over_pools_of_one_site():
    two_pools = factory("two-pools", AcceleratorPool("h100", 5, 700.0, 1000.0, 80.0),
                        AcceleratorPool("l40s", 5, 350.0, 500.0, 48.0))
    w = WorkloadDemand(key="a/chat", tokens_per_second=6000.0, splittable=True, max_sites=2)
    mesh = Mesh(factories=(two_pools,), workloads=(w,))
    p = placement.plan(mesh, CONFIG)
    check_plan(mesh, p)
    d = p.workloads["a/chat"]
    assert d.phase == "Placed" and d.sites == ("two-pools",) and len(d.assignments) == 2
