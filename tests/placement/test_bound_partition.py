"""The LP bound, CP-SAT on every pair, the stop reason and the partitioned solve.

* the LP bound (placement/lp_bound.py) is an upper bound on the optimum that HiGHS
  proves (bench/exact.py, written apart from the engine) and at least as tight as the
  Lagrangian bound over the same pairs (hypothesis over every mesh family);
* when every feasible pair is a CP-SAT candidate and CP-SAT proves phase A, the
  plan's placed value IS the proven optimum (its bound is then a bound of the mesh);
* the partitioned cold path (placement/partition.py), forced on small meshes: parts
  cover each placeable workload once in equal runs along the region order, and the
  plan holds every constraint, never falls below the kube-scheduler-order greedy, is
  the same twice and warm-starts (re-solving only the changed workloads).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from bench.exact import solve as exact_solve
from placement import SolverConfig
from placement.basis import Basis
from placement.bound import (
    INCREMENTAL_BOUND_METHOD,
    LP_BOUND_METHOD,
    all_pairs,
    lagrangian_at,
    lagrangian_bound,
    lp_relaxation,
    workload_terms,
)
from placement.decisions import SolveStatus
from placement.greedy import greedy_order, run_greedy
from placement.partition import partition_count, site_regions, workload_parts
from placement.problem import WorkBudgets
from placement.report import stop_reason
from placement.snapshot import build
from placement_ext import filter_score_topk
from tests.support.invariants import check_plan
from tests.support.meshes import FAMILIES, family_mesh, perturb, synthetic_mesh

CONFIG = SolverConfig(num_workers=2)
# every mesh partitioned: parts of 40 workloads, each with a small CP-SAT budget
PARTITIONED = replace(CONFIG, budgets=replace(CONFIG.budgets, partition_min_pairs=0, partition_workloads=40,
                                                 phase_a_dtime=0.2, phase_b_dtime=0.2, partition_target_gap=0.0))


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(FAMILIES), workloads=st.integers(5, 40), sites=st.integers(2, 10),
       seed=st.integers(0, 2**32 - 1))
def test_lp_bound_holds_the_optimum_and_beats_the_lagrangian(family: str, workloads: int, sites: int,
                                                              seed: int) -> None:
    mesh = family_mesh(family, workloads, sites, seed)
    snap = build(mesh, CONFIG)
    pairs = all_pairs(snap, 1)
    if pairs.n == 0:
        return
    lp = lp_relaxation(snap, pairs)
    assert lp is not None and lp.method == LP_BOUND_METHOD
    greedy = float(snap.value[run_greedy(snap, greedy_order(snap)).placed].sum())
    lag = lagrangian_bound(snap, pairs, greedy, 1, 300)
    assert lp.bound <= lag.bound * (1 + 1e-5)
    exact = exact_solve(mesh, time_limit_s=20.0)
    if exact.proven:
        assert lp.bound >= exact.objective
    assert lp.lp_share is not None and ((lp.lp_share >= 0) & (lp.lp_share <= 1)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_proof_over_every_pair_is_the_optimum(family: str) -> None:
    mesh = family_mesh(family, 50, 10, 1)
    plan = placement.plan(mesh, CONFIG)
    check_plan(mesh, plan)
    s = plan.stats
    assert s.complete_candidates  # 50 x 10 is far under exact_max_pairs
    exact = exact_solve(mesh, time_limit_s=30.0)
    assert exact.proven
    assert s.bound >= exact.objective
    if s.status == SolveStatus.OPTIMAL:
        assert s.placed_priority_demand == exact.objective and s.gap == 0.0
        assert "optimal over every feasible pair" in s.stop_reason


def test_stop_reason_names_what_stopped_the_solve() -> None:
    c = SolverConfig(budgets=WorkBudgets(target_gap=0.005, phase_a_dtime=0.3), time_limit_s=12.0)
    assert "0.50%" in stop_reason(SolveStatus.HINT_AT_TARGET, c)
    assert "work budget (0.3 deterministic s)" in stop_reason(SolveStatus.FEASIBLE, c)
    wall = stop_reason(SolveStatus.FEASIBLE, c, wall_limit_hit=True)
    assert "safety net (12 s)" in wall
    assert "over the candidates" in stop_reason(SolveStatus.AT_TARGET, c)
    assert "over every feasible pair" in stop_reason(SolveStatus.AT_TARGET, c, complete_candidates=True)
    assert stop_reason(SolveStatus.OPTIMAL, c, partitions=4).startswith("4 partitions")
    assert "boom" in stop_reason(SolveStatus.ERROR, c, error="boom")


def test_parts_cover_every_placeable_workload_once_in_equal_region_runs() -> None:
    snap = build(synthetic_mesh(300, 40, seed=2), CONFIG)
    kout = filter_score_topk(snap.cols, snap.wls, 4, 1)
    best = kout["cand_col"][:, 0]
    n_parts = partition_count(300, PARTITIONED)
    parts = workload_parts(snap, kout["cand_col"], n_parts)
    assert len(parts) == n_parts
    ws = np.concatenate(parts)
    assert np.unique(ws).size == ws.size
    assert set(ws.tolist()) == set(np.flatnonzero(best >= 0).tolist())
    assert max(p.size for p in parts) - min(p.size for p in parts) <= 1  # equal runs
    # region-aware: the parts' best sites, in region order, do not interleave
    regions = site_regions(snap)
    order = sorted(range(snap.n_sites), key=lambda s: (regions[s], snap.site_names[s]))
    pos = {s: i for i, s in enumerate(order)}
    spans = [(min(pos[int(snap.cols.site[best[w]])] for w in p), max(pos[int(snap.cols.site[best[w]])] for w in p))
             for p in parts]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize(("family", "seed"), [("base", 0), ("scarce", 1), ("shared-power", 2), ("sovereignty", 3)])
def test_partitioned_plan_is_valid_deterministic_and_above_the_greedy(family: str, seed: int) -> None:
    mesh = family_mesh(family, 200, 30, seed)
    plan = placement.plan(mesh, PARTITIONED)
    check_plan(mesh, plan)
    s = plan.stats
    assert s.partitions >= 2 and s.stop_reason.startswith(f"{s.partitions} partitions")
    assert s.placed_priority_demand >= s.greedy_placed_priority_demand
    assert s.bound >= s.placed_priority_demand
    again = placement.plan(mesh, PARTITIONED)
    assert again.workloads == plan.workloads and again.sites == plan.sites
    changed = perturb(mesh)
    warm = placement.plan(changed, PARTITIONED, previous=plan)
    check_plan(changed, warm)
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    if warm.stats.warm:  # the changed ones, and only what they can affect, are re-solved
        before = {w.key: w for w in mesh.workloads}
        moved = sum(1 for w in changed.workloads if before.get(w.key) != w)
        assert moved <= warm.stats.resolved_workloads < len(changed.workloads)
    else:  # the warm plan fell below the kube-scheduler-order greedy: a cold plan instead
        assert warm.stats.partitions >= 2


def test_a_huge_mesh_whose_greedy_is_within_its_target_keeps_the_greedy() -> None:
    mesh = family_mesh("base", 200, 30, 0)
    at_target = replace(PARTITIONED, budgets=replace(PARTITIONED.budgets, partition_target_gap=1.0))  # any greedy is "within 100%"
    plan = placement.plan(mesh, at_target)
    check_plan(mesh, plan)
    s = plan.stats
    assert s.partitions == 0 and s.status == SolveStatus.HINT_AT_TARGET
    assert s.stop_reason.startswith("huge mesh:") and "100.00%" in s.stop_reason
    assert s.placed_priority_demand == s.greedy_placed_priority_demand
    assert s.bound >= s.placed_priority_demand
    changed = perturb(mesh)
    warm = placement.plan(changed, at_target, previous=plan)
    check_plan(changed, warm)
    if warm.stats.warm:  # the changed, and only what they can affect, are re-solved
        before = {w.key: w for w in mesh.workloads}
        moved = sum(1 for w in changed.workloads if before.get(w.key) != w)
        assert moved <= warm.stats.resolved_workloads < len(changed.workloads)



def test_the_warm_bound_of_a_huge_mesh_is_the_lagrangian_at_the_kept_multipliers() -> None:
    """The incremental bound (kept terms of unchanged workloads + the changed ones
    evaluated) equals the Lagrangian evaluated over every pair of the changed mesh at
    the same multipliers, so it is a valid bound of that mesh."""
    mesh = family_mesh("base", 200, 30, 0)
    huge = replace(PARTITIONED, budgets=replace(PARTITIONED.budgets, partition_target_gap=1.0))
    cold = placement.plan(mesh, huge)
    assert isinstance(cold.basis, Basis) and cold.basis.terms is not None and cold.basis.multipliers is not None
    changed = perturb(mesh, fraction=0.05)
    warm = placement.plan(changed, huge, previous=cold)
    check_plan(changed, warm)  # carried reasons name only holders still placed, of higher priority
    assert warm.stats.warm and warm.stats.bound_method == INCREMENTAL_BOUND_METHOD
    snap = build(changed, huge)
    full = lagrangian_at(snap, cold.basis.multipliers,
                         float(workload_terms(snap, all_pairs(snap, 1), cold.basis.multipliers).sum()))
    assert warm.stats.bound == pytest.approx(full, rel=1e-9)
    assert warm.stats.bound >= warm.stats.placed_priority_demand
    exact = exact_solve(changed, time_limit_s=20.0)
    if exact.proven:
        assert warm.stats.bound >= exact.objective
