"""The exact reference (bench/exact.py, phase A as a MIP solved by HiGHS) against brute
force on tiny meshes, and what it proves about the engine and the baseline.

Brute force enumerates, per workload, "not placed" and every way to place it (a whole
workload: each column that passes the filters; a splittable one: every device vector
over its columns within maxSites that meets the demand with no surplus device), then
every combination within the columns' devices and the sites' power, firm power and
fleet caps. Tiny meshes are drawn so power and devices bind.
"""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from bench.baseline import Problem, as_plan, priority_demand, schedule
from bench.exact import solve
from placement import SolverConfig
from placement.problem import AcceleratorPool, FactorySite, FleetSite, Mesh, WorkloadDemand
from tests.support.invariants import check_plan
from tests.support.meshes import family_mesh

MODELS = ("h100", "l40s")


@st.composite
def tiny_meshes(draw) -> Mesh:
    factories = []
    for i in range(draw(st.integers(1, 2))):
        pools = tuple(
            AcceleratorPool(m, draw(st.integers(1, 4)), draw(st.sampled_from([400.0, 700.0, 1000.0])),
                            draw(st.sampled_from([900.0, 2400.0])), 80.0)
            for m in draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=2, unique=True))
        )
        firm = draw(st.integers(1, 6)) / 1000  # 1-6 kW: a few devices
        flex = draw(st.integers(0, 3)) / 1000
        factories.append(FactorySite(f"f{i}", "r", draw(st.sampled_from(["DE", "US"])), firm_mw=firm, flexible_mw=flex,
                                     curtailed_mw=draw(st.sampled_from([0.0, flex / 2])), pue=1.2, pools=pools))
    fleets = [
        FleetSite(f"fl{i}", "r", "DE", devices=draw(st.integers(1, 4)), accelerator_model="orin",
                  tokens_per_second_per_device=500.0, watts_per_device=300.0, memory_gib=32.0,
                  max_fleet_mw=draw(st.sampled_from([0.0006, 0.0012, float("inf")])))
        for i in range(draw(st.integers(0, 1)))
    ]
    workloads = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["training", "inference", "batch", "fine-tuning"]))
        splittable = kind != "training" and draw(st.booleans())
        demand = ({"accelerators": draw(st.integers(1, 4))} if kind in ("training", "fine-tuning") or draw(st.booleans())
                  else {"tokens_per_second": float(draw(st.integers(300, 6000)))})
        workloads.append(WorkloadDemand(
            key=f"ns/w{i}", type=kind, splittable=splittable, max_sites=draw(st.integers(1, 2)) if splittable else 1,
            interruptible=draw(st.booleans()), allow_fleets=draw(st.booleans()), priority=draw(st.sampled_from([0, 1, 5])),
            allowed_countries=draw(st.sampled_from([(), ("DE",)])), **demand))
    return Mesh(tuple(factories), tuple(fleets), tuple(workloads), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


def _options(p: Problem, wi: int) -> list[list[tuple[int, int]]]:
    w = p.mesh.workloads[wi]
    cols = [p.columns[c] for c in p.feasible[wi]]
    if p.whole(w):
        return [[(c.index, p.need(w, c))] for c in cols if p.need(w, c) <= c.devices]
    out = []
    for counts in itertools.product(*(range(c.devices + 1) for c in cols)):
        chosen = [(c.index, n) for c, n in zip(cols, counts, strict=True) if n]
        if not chosen or len({p.columns[c].site for c, _ in chosen}) > p.site_limit(w):
            continue
        if w.accelerators is not None:
            ok = sum(n for _, n in chosen) == w.accelerators
        else:
            supply = sum(n * p.columns[c].tps_milli for c, n in chosen)
            need = p.demand_milli(w)
            ok = supply >= need and all(supply - p.columns[c].tps_milli < need for c, _ in chosen)
        if ok:
            out.append(chosen)
    return out


def brute_force(p: Problem) -> int:
    mesh = p.mesh
    options = [_options(p, wi) for wi in range(len(mesh.workloads))]
    best = 0

    def fits(assign: list[tuple[int, list[tuple[int, int]]]]) -> bool:
        dev: dict[int, int] = {}
        watts: dict[int, float] = {}
        firm: dict[int, float] = {}
        for wi, chosen in assign:
            for c, n in chosen:
                col = p.columns[c]
                dev[c] = dev.get(c, 0) + n
                watts[col.site] = watts.get(col.site, 0) + n * col.watts
                if not mesh.workloads[wi].interruptible:
                    firm[col.site] = firm.get(col.site, 0) + n * col.watts
        return (all(n <= p.columns[c].devices for c, n in dev.items())
                and all(v <= p.sites[s].usable_w for s, v in watts.items())
                and all(v <= p.sites[s].firm_w for s, v in firm.items()))

    def go(wi: int, assign: list, value: int) -> None:
        nonlocal best
        if value + sum(p.value[wi:]) <= best:
            return
        if wi == len(mesh.workloads):
            best = value
            return
        for chosen in options[wi]:
            if fits([*assign, (wi, chosen)]):
                go(wi + 1, [*assign, (wi, chosen)], value + p.value[wi])
        go(wi + 1, assign, value)

    go(0, [], 0)
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mesh=tiny_meshes())
def test_exact_equals_brute_force_and_bounds_engine_and_baseline(mesh: Mesh) -> None:
    p = Problem.of(mesh)
    result = solve(mesh, time_limit_s=30.0, problem=p)
    assert result.proven
    assert result.objective == brute_force(p)
    check_plan(mesh, as_plan(p, result.assignments))  # the optimum is a valid plan
    engine = placement.plan(mesh, SolverConfig(num_workers=1))
    engine_assignments = {k: [(next(c.index for c in p.columns if c.site_name == a.site and c.model == a.accelerator_model),
                               a.devices) for a in d.assignments] for k, d in engine.workloads.items()}
    # the baseline counts value in the engine's units
    assert priority_demand(p, engine_assignments) == engine.stats.placed_priority_demand
    assert engine.stats.placed_priority_demand <= result.objective
    assert engine.stats.bound >= result.objective
    assert schedule(mesh).priority_demand() <= result.objective


def test_exact_on_a_small_shared_power_mesh_is_a_valid_plan_above_both() -> None:
    mesh = family_mesh("shared-power", 50, 10, 0)
    result = solve(mesh, time_limit_s=30.0)
    assert result.proven and result.problem is not None
    check_plan(mesh, as_plan(result.problem, result.assignments))
    engine = placement.plan(mesh, SolverConfig(num_workers=2))
    assert schedule(mesh).priority_demand() <= result.objective
    assert engine.stats.placed_priority_demand <= result.objective <= engine.stats.bound
