"""The LP bound on phase A: a linear program over every feasible pair, solved by GLOP.

Called by :mod:`placement.bound` (:func:`placement.bound.full_bound`) when the
problem is small enough (``WorkBudgets.lp_bound_max_pairs``); larger problems keep the
Lagrangian bound alone. Both are valid upper bounds on the best placement of the FULL
problem (every feasible workload x column pair, not only the kernel's top-K).

Variables: per feasible pair p = (workload w, column c), ``t[p]`` in [0, u[p]], the
share of w's demand placed on c (whole workloads: 0/1 relaxed, u = 1; splittable:
u = min(1, capacity(c) / demand devices), the per-column limit a fractional knapsack
over its columns respects). Rows:

* per workload ``sum_p t[p] <= 1`` (placed at most once);
* per column ``sum_p coef[p] t[p] <= capacity``; per site ``sum watts coef t <= usable``
  and, over non-interruptible workloads where firm < usable, ``<= firm``, with
  ``coef`` the devices of the pair as in the Lagrangian (``placement_ext``'s
  ``_pair_coef``);
* clique cuts: of the whole-workload pairs that each take more than half of a
  column's devices, of a site's usable power or of its firm power, an integer plan
  uses at most one per column or site, so ``sum t <= 1`` over them.

Maximise ``sum_p value[w] t[p]``. Without the limits and the cuts this LP is the
Lagrangian dual, so its value is what the subgradient method approaches; with them it
is at least as tight. GLOP's primal simplex is deterministic (one thread, no clock
in the result); the LP value is inflated by ``SAFETY`` (relative) against its
tolerances, so the bound stays valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from ortools.linear_solver.python import model_builder_helper as mbh

# GLOP works to 1e-7 feasibility tolerances on rows scaled to ~1: a relative margin
# well above them keeps the bound an upper bound.
SAFETY = 1e-6


@dataclass(slots=True)
class LpBound:
    """An LP bound and the duals of its coupling rows (Lagrangian multipliers)."""

    bound: float
    multipliers: NDArray[np.float64]  # [C + 2 S] scaled like placement.bound's
    ms: float  # a timing
    rows: int
    pairs: int
    # per workload, the share of its demand the LP places (0..1): guides a greedy order
    share: NDArray[np.float64]
    # per feasible pair (placement.bound.Pairs order), the LP's share on that column
    pair_share: NDArray[np.float64]


def lp_bound(
    value: NDArray[np.float64],
    ptr: NDArray[np.int64],
    col: NDArray[np.int32],
    coef: NDArray[np.float64],
    whole: NDArray[np.bool_],
    interruptible: NDArray[np.bool_],
    site: NDArray[np.int64],
    watts: NDArray[np.float64],
    cap: NDArray[np.float64],
    total: NDArray[np.float64],
    firm: NDArray[np.float64],
) -> LpBound | None:
    """Solve the LP of the module doc; None when GLOP does not prove its optimum.

    Per workload: ``value``, ``whole`` (site limit 1), ``interruptible``; per pair
    (CSR ``ptr``): ``col``, ``coef``; per column: ``site``, ``watts`` (facility watts
    per device), ``cap`` (devices); per site: ``total`` (usable watts), ``firm``
    (firm watts, <= total)."""
    t0 = time.perf_counter()
    W = int(value.shape[0])
    N = int(col.shape[0])
    C = int(cap.shape[0])
    S = int(total.shape[0])
    w_of = np.repeat(np.arange(W, dtype=np.int64), np.diff(ptr))
    c_of = col.astype(np.int64)
    s_of = site[c_of]
    dev = coef
    pw = dev * watts[c_of]
    ni = ~interruptible[w_of]
    pair = np.arange(N, dtype=np.int64)
    firm_rows = (firm < total) & (firm >= 0)
    whole_p = whole[w_of]

    blocks_r: list[NDArray[np.int64]] = []
    blocks_c: list[NDArray[np.int64]] = []
    blocks_v: list[NDArray[np.float64]] = []
    ub_rows: list[NDArray[np.float64]] = []
    row = 0

    def block(r: NDArray[np.int64], p: NDArray[np.int64], v: NDArray[np.float64], rhs: NDArray[np.float64]) -> int:
        nonlocal row
        blocks_r.append(r + row)
        blocks_c.append(p)
        blocks_v.append(v)
        ub_rows.append(rhs)
        start = row
        row += int(rhs.shape[0])
        return start

    block(w_of, pair, np.ones(N), np.ones(W))
    col_row = block(c_of, pair, dev, cap)
    site_row = block(s_of, pair, pw, total)
    firm_row = block(s_of[ni], pair[ni], pw[ni], np.where(firm_rows, firm, np.inf))
    # clique cuts: whole pairs each over half a column / a site's power
    for mask, key, n in (
        (whole_p & (2 * dev > cap[c_of]), c_of, C),
        (whole_p & (2 * pw > total[s_of]), s_of, S),
        (whole_p & ni & firm_rows[s_of] & (2 * pw > firm[s_of]), s_of, S),
    ):
        counts = np.bincount(key[mask], minlength=n)
        keep = mask & (counts[key] >= 2)
        if keep.any():
            groups, inv = np.unique(key[keep], return_inverse=True)
            block(inv.astype(np.int64), pair[keep], np.ones(int(keep.sum())), np.ones(groups.shape[0]))
    R = row
    A = sp.csr_matrix(
        (np.concatenate(blocks_v), (np.concatenate(blocks_r), np.concatenate(blocks_c))), shape=(R, N)
    )
    rhs = np.concatenate(ub_rows)
    finite = np.isfinite(rhs)
    lo_r = np.full(R, -np.inf)
    hi_r = np.where(finite, rhs, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_col = np.where(dev > 0, cap[c_of] / dev, 1.0)
    ub = np.where(whole_p, 1.0, np.minimum(1.0, per_col))
    obj = value[w_of].astype(np.float64)
    model = mbh.ModelBuilderHelper()
    # the binding's stubs spell its array types wrongly (ndarray[float64, ...]): untyped call
    fill: Any = model.fill_model_from_sparse_data
    fill(np.zeros(N), ub, obj, lo_r, hi_r, A)
    model.set_maximize(True)
    solver = mbh.ModelSolverHelper("glop")
    solver.solve(model)
    if solver.status() != mbh.SolveStatus.OPTIMAL:
        return None
    lp_value = float(solver.objective_value())
    t = np.asarray(solver.variable_values(), dtype=np.float64)
    share = np.bincount(w_of, weights=t, minlength=W)
    duals = np.asarray(solver.dual_values(), dtype=np.float64)
    # multipliers scaled by their right-hand sides, as placement.bound keeps them
    mu = np.abs(duals[col_row : col_row + C]) * cap
    lam = np.abs(duals[site_row : site_row + S]) * total
    phi = np.where(firm_rows, np.abs(duals[firm_row : firm_row + S]) * np.where(firm_rows, firm, 0.0), 0.0)
    return LpBound(
        bound=lp_value * (1.0 + SAFETY) + SAFETY,
        multipliers=np.concatenate([mu, lam, phi]),
        ms=(time.perf_counter() - t0) * 1e3,
        rows=R,
        pairs=N,
        share=np.clip(share, 0.0, 1.0),
        pair_share=np.clip(t, 0.0, 1.0),
    )
