"""Every empty or degenerate combination gives a Plan, cold and warm: workloads
without sites, sites without workloads, nothing at all, only fleets, only factories,
everything cordoned, every fleet offline. Unplaced workloads say why."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from placement import (
    AcceleratorPool,
    AvailabilityWindow,
    FactorySite,
    FleetSite,
    Link,
    Mesh,
    SolverConfig,
    UserRegion,
    WorkBudgets,
    WorkloadDemand,
)
from tests.support.invariants import check_plan

CONFIG = SolverConfig(num_workers=1, budgets=WorkBudgets(phase_a_dtime=0.1, phase_b_dtime=0.1))
NOON = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
NIGHT = AvailabilityWindow(dt.time(22), dt.time(6), "UTC", 1.0)

FACTORY = FactorySite(name="f", region="r", country="US", firm_mw=1.0, pue=1.0,
                      pools=(AcceleratorPool("h100", 100, 700.0, 2400.0, 80.0),))
FLEET = FleetSite(name="cars", region="r", country="US", devices=1000, accelerator_model="orin",
                  tokens_per_second_per_device=200.0, watts_per_device=900.0, memory_gib=32.0)
WORKLOADS = (
    WorkloadDemand(key="a/train", type="training", accelerators=8),
    WorkloadDemand(key="a/chat", tokens_per_second=1000.0, allow_fleets=True, splittable=True, max_sites=2),
)

CASES = {
    "nothing": Mesh(at=NOON),
    "workloads, no sites": Mesh(workloads=WORKLOADS, at=NOON),
    "sites, no workloads": Mesh(factories=(FACTORY,), fleets=(FLEET,), at=NOON),
    "fleets only": Mesh(fleets=(FLEET,), workloads=WORKLOADS, at=NOON),
    "factories only": Mesh(factories=(FACTORY,), workloads=WORKLOADS, at=NOON),
    "all cordoned": Mesh(factories=(replace(FACTORY, cordoned=True),), fleets=(replace(FLEET, cordoned=True),),
                         workloads=WORKLOADS, at=NOON),
    "all fleets offline": Mesh(fleets=(replace(FLEET, availability=(NIGHT,)),), workloads=WORKLOADS, at=NOON),
}


@pytest.mark.parametrize("name", list(CASES))
def test_degenerate_meshes_plan_cold_and_warm(name):
    mesh = CASES[name]
    cold = placement.plan(mesh, CONFIG)
    check_plan(mesh, cold)
    warm = placement.plan(mesh, CONFIG, previous=cold)
    check_plan(mesh, warm)
    for p in (cold, warm):
        for w in mesh.workloads:
            d = p.workloads[w.key]
            if d.phase != "Placed":
                assert d.phase == "Unschedulable" and d.message
    if not mesh.factories and not mesh.fleets:
        for d in cold.workloads.values():
            assert d.message == "0/0 sites fit"
    if name in ("all cordoned", "all fleets offline"):
        assert all(d.phase == "Unschedulable" and d.message.startswith("0/") for d in cold.workloads.values())
    if not mesh.workloads:
        assert cold.workloads == {} and cold.stats.status == "EMPTY"


def test_factories_only_places_what_fits():
    p = placement.plan(CASES["factories only"], CONFIG)
    assert p.workloads["a/train"].phase == "Placed" and p.workloads["a/chat"].phase == "Placed"


@st.composite
def small_meshes(draw) -> Mesh:
    """Hand-built meshes of 0-3 factories, 0-3 fleets and 0-6 workloads, corner cases
    included (cordons, offline fleets, unreachable users, tiny power)."""
    regions = ["r0", "r1", "r2"]
    factories = []
    for i in range(draw(st.integers(0, 3))):
        pools = tuple(
            AcceleratorPool(m, draw(st.integers(1, 50)), draw(st.sampled_from([350.0, 700.0, 1200.0])),
                            draw(st.sampled_from([500.0, 2400.0, 5200.0])), draw(st.sampled_from([48.0, 80.0])))
            for m in draw(st.lists(st.sampled_from(["h100", "h200", "l40s"]), min_size=1, max_size=2, unique=True))
        )
        factories.append(FactorySite(
            name=f"f{i}", region=draw(st.sampled_from(regions)), country=draw(st.sampled_from(["US", "DE"])),
            firm_mw=draw(st.sampled_from([0.0, 0.005, 0.02, 1.0])), flexible_mw=draw(st.sampled_from([0.0, 0.01])),
            pue=draw(st.sampled_from([1.0, 1.2])), pools=pools, cordoned=draw(st.booleans()),
            links=(Link(draw(st.sampled_from(regions)), draw(st.sampled_from([5.0, 40.0]))),),
        ))
    fleets = [
        FleetSite(name=f"fl{i}", region=draw(st.sampled_from(regions)), country="US",
                  devices=draw(st.integers(0, 200)), accelerator_model="orin", tokens_per_second_per_device=200.0,
                  watts_per_device=900.0, memory_gib=32.0, max_fleet_mw=draw(st.sampled_from([0.001, 0.1])),
                  availability=draw(st.sampled_from([(), (NIGHT,)])), cordoned=draw(st.booleans()))
        for i in range(draw(st.integers(0, 3)))
    ]
    workloads = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["training", "inference", "batch"]))
        splittable = kind != "training" and draw(st.booleans())
        demand = ({"accelerators": draw(st.integers(1, 80))} if kind == "training" or draw(st.booleans())
                  else {"tokens_per_second": draw(st.sampled_from([100.0, 5000.0, 1e6]))})
        users = draw(st.sampled_from([(), (UserRegion("r0"),), (UserRegion("r1", 0.3), UserRegion("mars", 0.0))]))
        workloads.append(WorkloadDemand(
            key=f"n/w{i}", type=kind, splittable=splittable, max_sites=draw(st.integers(1, 3)) if splittable else 1,
            allow_fleets=kind != "training" and draw(st.booleans()), interruptible=draw(st.booleans()),
            priority=draw(st.integers(0, 1000)), users=users,
            max_latency_ms=draw(st.sampled_from([None, 10.0, 100.0])) if users else None, **demand,
        ))
    return Mesh(factories=tuple(factories), fleets=tuple(fleets), workloads=tuple(workloads), at=NOON)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mesh=small_meshes())
def test_small_meshes_never_raise_and_respect_every_rule(mesh):
    cold = placement.plan(mesh, CONFIG)
    check_plan(mesh, cold)
    warm = placement.plan(mesh, CONFIG, previous=cold)
    check_plan(mesh, warm)
