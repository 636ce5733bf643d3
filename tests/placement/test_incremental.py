"""Warm re-solve (the warm path of placement.pipeline): unchanged placements stay, changed ones are
re-solved against residual capacity, and every rule still holds."""

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from placement import SolverConfig
from placement.pipeline import MOSTLY_CHANGED, SITES_CHANGED, TOP_K_CHANGED
from placement.problem import WorkBudgets
from tests.support.invariants import check_plan
from tests.support.meshes import perturb, synthetic_mesh

FAST = SolverConfig(num_workers=1)


def placements(p):
    return {k: [(a.site, a.accelerator_model, a.devices) for a in d.assignments] for k, d in p.workloads.items()}


def test_unchanged_workloads_keep_their_assignments():
    mesh = synthetic_mesh(120, 20, seed=2)
    cold = placement.plan(mesh, FAST)
    changed = perturb(mesh, fraction=0.05, seed=3)
    warm = placement.plan(changed, FAST, previous=cold)
    check_plan(changed, warm)
    assert warm.stats.warm
    assert warm.stats.fixed_workloads + warm.stats.resolved_workloads == len(changed.workloads)
    before, after = placements(cold), placements(warm)
    same = {w.key for w, v in zip(mesh.workloads, changed.workloads, strict=True) if w == v}
    for k in same:
        if before[k]:
            assert after[k] == before[k]
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    assert warm.stats.bound >= warm.stats.placed_priority_demand


def test_removed_and_added_workloads():
    mesh = synthetic_mesh(80, 15, seed=5)
    cold = placement.plan(mesh, FAST)
    extra = synthetic_mesh(5, 15, seed=99).workloads
    extra = tuple(replace(w, key=w.key + "-new") for w in extra)
    changed = replace(mesh, workloads=mesh.workloads[10:] + extra)
    warm = placement.plan(changed, FAST, previous=cold)
    check_plan(changed, warm)
    assert warm.stats.warm and set(warm.workloads) == {w.key for w in changed.workloads}


def test_a_burst_of_new_workloads_is_planned_cold():
    """More than half the workloads new (a burst of creations): re-solving them around
    the few kept ones would cost a cold plan's time and place less."""
    mesh = synthetic_mesh(80, 15, seed=5)
    first = replace(mesh, workloads=mesh.workloads[:30])
    p = placement.plan(mesh, FAST, previous=placement.plan(first, FAST))
    check_plan(mesh, p)
    assert not p.stats.warm and p.stats.warm_fallback == MOSTLY_CHANGED
    half = replace(mesh, workloads=mesh.workloads[:60])
    q = placement.plan(mesh, FAST, previous=placement.plan(half, FAST))
    assert q.stats.warm or q.stats.warm_fallback != MOSTLY_CHANGED  # 20 of 80 new: warm


def test_site_change_falls_back_to_a_full_solve():
    mesh = synthetic_mesh(60, 10, seed=6)
    cold = placement.plan(mesh, FAST)
    f0 = mesh.factories[0]
    changed = replace(mesh, factories=(replace(f0, firm_mw=f0.firm_mw * 0.5),) + mesh.factories[1:])
    p = placement.plan(changed, FAST, previous=cold)
    check_plan(changed, p)
    assert not p.stats.warm
    assert p.stats.warm_fallback == SITES_CHANGED  # the operator logs why a re-plan was cold
    assert cold.stats.warm_fallback == ""  # no previous plan: nothing fell back
    other_k = placement.plan(mesh, replace(FAST, budgets=replace(FAST.budgets, top_k=3)), previous=cold)
    assert not other_k.stats.warm and other_k.stats.warm_fallback == TOP_K_CHANGED


def test_unchanged_mesh_warm_is_as_good():
    mesh = synthetic_mesh(80, 15, seed=4)
    cold = placement.plan(mesh, FAST)
    warm = placement.plan(mesh, FAST, previous=cold)
    check_plan(mesh, warm)
    assert warm.stats.warm and warm.stats.placed_priority_demand >= cold.stats.placed_priority_demand
    assert warm.stats.warm_fallback == ""


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), workloads=st.integers(2, 40), sites=st.integers(1, 10),
       load=st.floats(0.5, 3.0), fraction=st.floats(0.05, 0.5))
def test_warm_plans_respect_every_rule(seed, workloads, sites, load, fraction):
    mesh = synthetic_mesh(workloads, sites, seed=seed, load=load)
    cfg = SolverConfig(num_workers=1, budgets=WorkBudgets(phase_a_dtime=0.1, phase_b_dtime=0.1))
    cold = placement.plan(mesh, cfg)
    changed = perturb(mesh, fraction=fraction, seed=seed + 1)
    warm = placement.plan(changed, cfg, previous=cold)
    check_plan(changed, warm)
    assert warm.stats.bound >= warm.stats.placed_priority_demand
