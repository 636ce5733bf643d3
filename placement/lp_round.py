"""An LP-guided greedy run: the LP bound's solution, rounded, as one more hint.

Called by :mod:`placement.pipeline` (cold path, when the LP bound of
:mod:`placement.lp_bound` ran), which keeps the run only when it places strictly more
than every other greedy run. On meshes where a few huge whole jobs compete with many
small ones (the ``gangs`` family) the question is which gangs to place where, and the
LP, nearly tight there, answers it where a greedy order cannot:

1. queue: the LP's placed share per workload, largest first (to 1e-6), then value,
   then the kube-scheduler order;
2. whole workloads the LP puts at least half on one column take that column, in
   queue order, when it still has the devices and the site the power;
3. everything else by the cheapest-first greedy
   (``placement_ext.MeshKernels.greedy_place``) in queue order, against what step 2
   left.

Deterministic: a function of the snapshot and the LP's solution (GLOP's simplex is).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.greedy import GreedyRun, greedy_order, run_greedy
from placement.snapshot import Snapshot, residual

MAJORITY = 0.5  # the LP's share on one column that makes it the column


def lp_order(snap: Snapshot, share: NDArray[np.float64]) -> NDArray[np.int32]:
    """Queue order from the LP: the largest placed share first (to 1e-6), then value,
    then the kube-scheduler order."""
    W = len(snap.keys)
    rank = np.empty(W, dtype=np.int64)
    rank[greedy_order(snap)] = np.arange(W)
    return np.lexsort((rank, -snap.value, -np.round(share, 6))).astype(np.int32)


def lp_rounding(
    snap: Snapshot,
    ptr: NDArray[np.int64],
    col: NDArray[np.int32],
    coef: NDArray[np.float64],
    share: NDArray[np.float64],
    pair_share: NDArray[np.float64],
) -> GreedyRun:
    """Steps 1-3 of the module doc over the whole mesh (``ptr``/``col``/``coef``: the
    feasible pairs the LP was solved on, ``share``/``pair_share``: its solution)."""
    W = len(snap.keys)
    cols = snap.cols
    order = lp_order(snap, share)
    col_left = cols.cap_devices.astype(np.float64).copy()
    all_left = snap.site_total_watts.astype(np.float64).copy()
    ni_left = np.minimum(snap.site_firm_watts, snap.site_total_watts).astype(np.float64)
    col_used = np.zeros(snap.n_cols)
    site_all = np.zeros(snap.n_sites)
    site_ni = np.zeros(snap.n_sites)
    chosen: list[tuple[int, int]] = [(-1, 0)] * W
    whole = snap.wls.site_limit <= 1
    interruptible = snap.wls.interruptible.astype(bool)
    for w in order.tolist():
        lo, hi = int(ptr[w]), int(ptr[w + 1])
        if not whole[w] or lo == hi:
            continue
        k = lo + int(np.argmax(pair_share[lo:hi]))
        if pair_share[k] < MAJORITY:
            continue
        c = int(col[k])
        n = float(coef[k])
        s = int(cols.site[c])
        watts = n * float(cols.watts[c])
        if col_left[c] < n or all_left[s] < watts or (not interruptible[w] and ni_left[s] < watts):
            continue
        chosen[w] = (c, int(n))
        col_left[c] -= n
        all_left[s] -= watts
        col_used[c] += n
        site_all[s] += watts
        if not interruptible[w]:
            ni_left[s] -= watts
            site_ni[s] += watts
    taken = np.asarray([c >= 0 for c, _ in chosen], dtype=bool)
    rest_idx = np.flatnonzero(~taken).astype(np.intp)
    rest = residual(snap, rest_idx, col_used, site_all, site_ni)
    pos = np.full(W, -1, dtype=np.int64)
    pos[rest_idx] = np.arange(rest_idx.size)
    run = run_greedy(rest, pos[order[~taken[order]]].astype(np.int32))
    width = max(1, int(run.cols.shape[1]))
    out_cols = np.full((W, width), -1, dtype=np.int32)
    out_dev = np.zeros((W, width), dtype=np.float64)
    out_cols[rest_idx, : run.cols.shape[1]] = run.cols
    out_dev[rest_idx, : run.cols.shape[1]] = run.devices
    placed = taken.copy()
    placed[rest_idx] = run.placed
    for w in np.flatnonzero(taken).tolist():
        out_cols[w, 0], out_dev[w, 0] = chosen[w]
    return GreedyRun(cols=out_cols, devices=out_dev, placed=placed)
