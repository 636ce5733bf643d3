"""The partitioned cold solve, for meshes too large to solve as one problem.

Called by :func:`placement.pipeline.partitioned_plan` when the mesh has more than
``WorkBudgets.partition_min_pairs`` feasible workload x column pairs (50,000 x 5,000
has 38.6 million; 10,000 x 1,000 has 1.5 million and is solved whole) and the
kube-scheduler-order greedy is not already within ``partition_target_gap`` of the
bound (then the pipeline keeps the greedy). A decomposition, region-aware:

1. **start**: the kube-scheduler-order greedy on the whole mesh (the floor, so the
   result can never be below it);
2. **partition** the workloads: ordered by where their best kernel candidate sits
   (sites sorted by region, then name) and cut into P equal runs, so a part holds the
   workloads that compete for the same sites. P = ceil(workloads /
   ``partition_workloads``), from the problem's size alone;
3. **re-solve each part in turn** against the capacity all the others hold (the
   part's own load taken out): the kernel with ``partition_top_k`` candidates, the
   part's current plan and a fresh greedy as hints (the current plan is the floor),
   the shared solve sequence (:mod:`placement.solve`); all parts together get
   ``partition_dtime_scale`` x the CP-SAT budgets, evenly. The next part sees the
   new plan's load.

Why in turn rather than POP's independent parts with split capacity: split capacity
fragments the sites (a part's share of a factory may hold none of its big jobs) and
needs a repair pass; in turn, every part sees the real leftovers, every step keeps a
feasible plan of the whole mesh and none places less than the one before. On 2 cores
parallel parts would buy nothing: CP-SAT already uses both.

Everything is a function of the snapshot and the config, so the plan is as
deterministic as the one-problem path. The bound (over all pairs, by the caller)
does not depend on the partition.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.candidates import Candidates, Devices, Row, build_candidates, from_rows, rows_of
from placement.decisions import SolveStatus
from placement.greedy import GreedyRun, all_columns, devices_from_greedy, greedy_order, run_greedy
from placement.problem import SolverConfig
from placement.snapshot import Snapshot, residual
from placement.solve import SolveResult, solve
from placement_ext.arrays import TopKArrays

_PROVEN = (SolveStatus.OPTIMAL, SolveStatus.AT_TARGET, SolveStatus.HINT_AT_TARGET, SolveStatus.EMPTY,
           SolveStatus.GREEDY)


def partition_count(n_workloads: int, config: SolverConfig) -> int:
    """How many parts a mesh of ``n_workloads`` is cut into (at least 1)."""
    return max(1, math.ceil(n_workloads / max(1, config.budgets.partition_workloads)))


def site_regions(snap: Snapshot) -> list[str]:
    """The region of each site of ``snap`` (index = site id)."""
    region = {f.name: f.region for f in snap.mesh.factories}
    region.update({f.name: f.region for f in snap.mesh.fleets})
    return [region.get(n, "") for n in snap.site_names]


def workload_parts(snap: Snapshot, cand_col: NDArray[np.int32], parts: int) -> list[NDArray[np.intp]]:
    """Region-aware parts of the workloads (each sorted; empty parts dropped).

    ``cand_col`` is the kernel's top-K per workload, best first (-1: none; a workload
    without any joins no part: it has no feasible site). The sites are ordered by
    region, then name; the workloads by where their best candidate sits in that
    order, and cut into ``parts`` runs of equal length: a part holds the workloads
    that want the same sites, the ones they compete for."""
    S = snap.n_sites
    regions = site_regions(snap)
    order = np.asarray(sorted(range(S), key=lambda s: (regions[s], snap.site_names[s])), dtype=np.intp)
    pos = np.empty(S, dtype=np.int64)
    pos[order] = np.arange(S)
    best_col = cand_col[:, 0] if cand_col.ndim == 2 and cand_col.shape[1] else np.full(len(snap.keys), -1, np.int32)
    placeable = np.flatnonzero(best_col >= 0)
    best_site = snap.cols.site[best_col[placeable]].astype(np.int64)
    by_place = placeable[np.lexsort((placeable, pos[best_site]))]
    cut = np.arange(by_place.size) * parts // max(1, by_place.size)
    return [np.sort(by_place[cut == g]).astype(np.intp) for g in range(parts) if (cut == g).any()]


@dataclass(slots=True)
class PartitionedResult:
    """The whole mesh's candidates and plan from the parts."""

    cands: Candidates
    result: SolveResult
    parts: int
    floor_value: int  # the kube-scheduler-order greedy's placed value on the whole mesh


def _usage(snap: Snapshot, cols_of: NDArray[np.int64], devices: NDArray[np.float64],
           interruptible: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Devices per column, watts per site (all load, non-interruptible load) of
    assignments (column, devices, the workload's interruptible flag)."""
    c = cols_of.astype(np.intp)
    pw = devices * snap.cols.watts[c]
    s = snap.cols.site[c]
    ni = ~interruptible
    return (np.bincount(c, weights=devices, minlength=snap.n_cols).astype(np.float64),
            np.bincount(s, weights=pw, minlength=snap.n_sites).astype(np.float64),
            np.bincount(s[ni], weights=pw[ni], minlength=snap.n_sites).astype(np.float64))


def _run_usage(snap: Snapshot, run: GreedyRun, rows: NDArray[np.intp]) -> tuple[NDArray[np.float64], ...]:
    """:func:`_usage` of a greedy run's assignments of workloads ``rows``."""
    c = run.cols[rows]
    taken = (c >= 0) & (run.devices[rows] > 0)
    intr = np.broadcast_to(snap.wls.interruptible[rows].astype(bool)[:, None], c.shape)
    return _usage(snap, c[taken].astype(np.int64), run.devices[rows][taken].astype(np.float64), intr[taken])


def partitioned_solve(snap: Snapshot, kout: TopKArrays, config: SolverConfig, deadline: float,
                      whole: GreedyRun) -> PartitionedResult:
    """Steps 1-3 of the module doc; ``kout`` is the kernel's pass over the whole mesh,
    ``whole`` the kube-scheduler-order greedy on it (the start, so also the floor)."""
    W = len(snap.keys)
    floor_value = int(snap.value[whole.placed].sum())
    parts = workload_parts(snap, kout["cand_col"], partition_count(W, config))
    # the budgets are shared: all parts together get partition_dtime_scale of them
    scale = config.budgets.partition_dtime_scale / max(1, len(parts))
    every = np.arange(W, dtype=np.intp)
    col_used, site_all, site_ni = _run_usage(snap, whole, every)
    rows: list[list[Row]] = [[] for _ in range(W)]
    statuses: list[SolveStatus] = []
    wall = False
    cpsat_ms = 0.0
    for widx in parts:
        # the part's own load is re-decided: what the others hold stays
        own_c, own_all, own_ni = _run_usage(snap, whole, widx)
        rest = residual(snap, widx, col_used - own_c, site_all - own_all, site_ni - own_ni)
        start = GreedyRun(cols=whole.cols[widx], devices=whole.devices[widx], placed=whole.placed[widx])
        part_kout = rest.kernels.filter_score_topk(config.budgets.partition_top_k, config.threads)
        runs = [start, run_greedy(rest, greedy_order(rest))]
        cands = build_candidates(rest, part_kout, all_columns(runs, widx.size), config.budgets.max_cpsat_vars)
        hints = [devices_from_greedy(cands, r) for r in runs]
        res = solve(rest, cands, hints, hints[0], None, config, deadline, scale)
        statuses.append(res.status)
        wall |= res.wall_limit_hit
        cpsat_ms += res.cpsat_ms
        w_of = np.repeat(np.arange(widx.size), np.diff(cands.ptr))
        new_c, new_all, new_ni = _usage(snap, cands.col.astype(np.int64), res.devices.astype(np.float64),
                                        rest.wls.interruptible[w_of].astype(bool))
        col_used += new_c - own_c
        site_all += new_all - own_all
        site_ni += new_ni - own_ni
        for j, w in enumerate(widx.tolist()):
            rows[w] = rows_of(cands, j, res.devices)
        whole = _replace_rows(whole, widx, cands, res.devices)
    cands, devices = from_rows(rows)
    status = SolveStatus.AT_TARGET if all(s in _PROVEN for s in statuses) else SolveStatus.FEASIBLE
    result = SolveResult(devices=devices, status=status, fallback_used=False, wall_limit_hit=wall,
                         cpsat_ms=cpsat_ms, decided_at=time.perf_counter())
    return PartitionedResult(cands=cands, result=result, parts=len(parts), floor_value=floor_value)


def _replace_rows(run: GreedyRun, widx: NDArray[np.intp], cands: Candidates, devices: Devices) -> GreedyRun:
    """``run`` with the assignments of workloads ``widx`` replaced by a part's plan
    (the next parts then see that plan's load)."""
    width = max(int(run.cols.shape[1]), max((int(np.count_nonzero(devices[cands.rows(j)]))
                                             for j in range(widx.size)), default=0))
    cols = np.full((run.cols.shape[0], width), -1, dtype=np.int32)
    dev = np.zeros((run.cols.shape[0], width), dtype=np.float64)
    cols[:, : run.cols.shape[1]] = run.cols
    dev[:, : run.cols.shape[1]] = run.devices
    placed = run.placed.copy()
    for j, w in enumerate(widx.tolist()):
        r = cands.rows(j)
        on = np.flatnonzero(devices[r] > 0)
        cols[w] = -1
        dev[w] = 0.0
        cols[w, : on.size] = cands.col[r][on]
        dev[w, : on.size] = devices[r][on]
        placed[w] = on.size > 0
    return GreedyRun(cols=cols, devices=dev, placed=placed)
