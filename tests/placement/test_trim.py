"""A workload never gets a device it does not need: removing any one of its devices
leaves its demand unmet (placement.trim, the last step of every solve)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import placement
from placement import AcceleratorPool, FactorySite, Mesh, SolverConfig, WorkloadDemand
from placement.candidates import Candidates, feasible_devices
from placement.problem import WorkBudgets
from placement.snapshot import build
from placement.trim import trim_surplus
from tests.support.invariants import check_plan
from tests.support.meshes import synthetic_mesh


def surplus_devices(mesh: Mesh, plan: placement.Plan) -> list[str]:
    """Assignments a token workload could lose one device of and still meet demand."""
    out = []
    for w in mesh.workloads:
        d = plan.workloads[w.key]
        if w.tokens_per_second is None or d.phase != "Placed":
            continue
        for a in d.assignments:
            if d.tokens_per_second - a.tokens_per_second / a.devices >= w.tokens_per_second + 1e-3 * d.devices:
                out.append(f"{w.key}@{a.site}/{a.accelerator_model}")
    return out


def test_phase_a_surplus_is_trimmed_when_phase_b_does_not_run():
    # A 3e9 tokens/s splittable workload competes for everything; phase A only asks
    # for sum(devices x tokens/s) >= demand, and with no phase B budget nothing else
    # removes what it over-provisions.
    mesh = synthetic_mesh(40, 10, seed=0)
    huge = WorkloadDemand(key="x/huge", tokens_per_second=3e9, splittable=True, max_sites=64, allow_fleets=True)
    mesh = replace(mesh, workloads=(*mesh.workloads, huge))
    p = placement.plan(mesh, SolverConfig(budgets=WorkBudgets(phase_a_dtime=0.05, phase_b_dtime=0.0)))
    assert p.stats.trimmed_devices > 0, "the scenario must leave phase A's surplus to the trim"
    assert surplus_devices(mesh, p) == []
    check_plan(mesh, p)


def test_greedy_and_fallback_plans_are_trimmed_too():
    mesh = synthetic_mesh(60, 12, seed=3)
    for config in (SolverConfig(use_cpsat=False), SolverConfig(time_limit_s=1e-6)):
        p = placement.plan(mesh, config)
        assert p.stats.fallback_used
        assert surplus_devices(mesh, p) == []
        check_plan(mesh, p)


def test_trim_removes_the_most_expensive_devices_first():
    cheap = FactorySite(name="cheap", region="r", country="US", firm_mw=10.0, pue=1.0, price_per_mwh=10.0,
                        pools=(AcceleratorPool("h100", 100, 700.0, 1000.0, 80.0),))
    dear = FactorySite(name="dear", region="r", country="US", firm_mw=10.0, pue=1.0, price_per_mwh=200.0,
                       pools=(AcceleratorPool("h100", 100, 700.0, 1000.0, 80.0),))
    w = WorkloadDemand(key="a/w", tokens_per_second=10_000.0, splittable=True, max_sites=2)
    snap = build(Mesh(factories=(cheap, dear), workloads=(w,)))
    # one candidate per site; the dear one costs more per device
    cands = Candidates.from_lists([0, 2], [0, 1], [10, 10], [10, 10], [1_000, 9_000])
    over = np.array([8, 7], dtype=np.int64)  # 15 devices for a 10-device demand
    assert feasible_devices(snap, cands, over)
    trimmed, removed = trim_surplus(snap, cands, over)
    assert removed == 5 and trimmed.tolist() == [8, 2]  # the dear site gives up 5
    assert feasible_devices(snap, cands, trimmed)
    again, removed = trim_surplus(snap, cands, trimmed)
    assert removed == 0 and again.tolist() == [8, 2]


def test_device_demand_is_left_exact():
    site = FactorySite(name="f", region="r", country="US", firm_mw=10.0, pue=1.0,
                       pools=(AcceleratorPool("h100", 100, 700.0, 2400.0, 80.0),))
    w = WorkloadDemand(key="a/ft", type="fine-tuning", accelerators=12)
    snap = build(Mesh(factories=(site,), workloads=(w,)))
    cands = Candidates.from_lists([0, 1], [0], [12], [12], [1])
    trimmed, removed = trim_surplus(snap, cands, np.array([12], dtype=np.int64))
    assert removed == 0 and trimmed.tolist() == [12]
