"""The Lagrangian bound (placement.bound) against the true optimum of the FULL problem.

The optimum is CP-SAT on every feasible workload x column pair (the kernel with
top_k = number of columns keeps them all), solved to proven optimality on tiny meshes.
"""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from placement import SolverConfig
from placement.bound import _Rows, all_pairs, lagrangian_bound
from placement.candidates import build_candidates, placed_value
from placement.cpsat import CpSatModel
from placement.greedy import greedy_order, run_greedy
from placement.problem import WorkBudgets
from placement.snapshot import build
from placement_ext import filter_score_topk, lagrangian_eval
from tests.support.meshes import synthetic_mesh

EXACT = SolverConfig(time_limit_s=60.0, num_workers=1, budgets=WorkBudgets(target_gap=0.0, phase_a_dtime=30.0))


def true_optimum(mesh):
    """Best placed priority-weighted demand over all feasible pairs, or None if unproven."""
    snap = build(mesh, EXACT)
    kout = filter_score_topk(snap.cols, snap.wls, max(1, snap.n_cols), 1)
    cands = build_candidates(snap, kout, run_greedy(snap, greedy_order(snap)).cols)
    # every feasible pair is a candidate: the model is the full problem
    assert cands.n == all_pairs(snap, 1).n
    res = CpSatModel(snap, cands).phase_a(np.zeros(cands.n, dtype=np.int64), EXACT, EXACT.budgets.phase_a_dtime, 60.0, None)
    if not res.exact or res.devices is None:
        return None, snap
    return placed_value(snap, cands, res.devices), snap


tiny = {
    "seed": st.integers(0, 10_000),
    "workloads": st.integers(1, 7),
    "sites": st.integers(1, 5),
    "load": st.floats(0.5, 4.0),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**tiny)
def test_bound_is_above_true_optimum_and_plan(seed, workloads, sites, load):
    mesh = synthetic_mesh(workloads, sites, seed=seed, load=load)
    opt, snap = true_optimum(mesh)
    p = placement.plan(mesh, SolverConfig(num_workers=1))
    assert p.stats.bound >= p.stats.placed_priority_demand
    assert p.stats.gap == max(0.0, (p.stats.bound - p.stats.placed_priority_demand) / max(1.0, p.stats.bound))
    if opt is not None:
        assert p.stats.bound >= opt * (1 - 1e-12)
        assert p.stats.placed_priority_demand <= opt


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**tiny, scale=st.floats(0.0, 1e9), data=st.data())
def test_any_nonnegative_multipliers_give_a_valid_bound(seed, workloads, sites, load, scale, data):
    mesh = synthetic_mesh(workloads, sites, seed=seed, load=load)
    opt, snap = true_optimum(mesh)
    if opt is None:
        return
    rows = _Rows(snap)
    n = rows.C + 2 * rows.S
    raw = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    pi = np.where(rows.active, np.asarray(raw) * scale, 0.0)
    pairs = all_pairs(snap, 1)
    p_int, p_ni = rows.prices(pi)
    total, _ = lagrangian_eval(pairs.ptr, pairs.col, pairs.coef, snap.value.astype(float),
                               snap.wls.interruptible, p_int, p_ni, 1)
    assert pi.sum() + total >= opt * (1 - 1e-12)


def test_subgradient_never_raises_the_bound_and_warm_start_helps():
    mesh = synthetic_mesh(300, 40, seed=11)
    snap = build(mesh)
    pairs = all_pairs(snap, 1)
    trivial = float(snap.value[np.diff(pairs.ptr) > 0].sum())  # all multipliers 0
    cold = lagrangian_bound(snap, pairs, 0.0, max_iters=60)
    assert cold.bound <= trivial * (1 + 1e-12)
    warm = lagrangian_bound(snap, pairs, 0.0, max_iters=5, init=cold.multipliers)
    assert warm.bound <= cold.bound * (1 + 1e-9)
    assert math.isfinite(cold.bound) and cold.iterations <= 60
