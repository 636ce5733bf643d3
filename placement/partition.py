"""The partitioned cold solve, for meshes too large to solve as one problem.

Called by :func:`placement.pipeline.cold_plan` when the mesh has more than
``SolverConfig.partition_min_pairs`` feasible workload x column pairs (50,000 x 5,000
has 38.6 million; 10,000 x 1,000 has 1.5 million and is solved whole). POP-style
(partitioned optimisation problems), region-aware:

1. **partition**: the sites, sorted by region then name, are cut into P contiguous
   groups that attract about the same number of workloads; each workload joins the
   group holding the site of its best kernel candidate. P =
   ceil(workloads / ``partition_workloads``), from the problem's size alone;
2. **solve each part on its own**: a snapshot of its workloads x its sites' columns,
   then the kernel, the multi-start greedy, candidates and the shared solve sequence
   (:mod:`placement.solve`, CP-SAT phases A and B on ``partition_dtime_scale`` of
   the budgets). The parts share no site, so their plans never conflict;
3. **repair**: the workloads still unplaced, against what the parts left on EVERY
   site (a workload whose region group was full may fit elsewhere), the same way;
4. **floor**: the result never places less than the kube-scheduler-order greedy on
   the whole mesh (else that greedy is the plan).

Everything is a function of the snapshot and the config, so the plan is as
deterministic as the one-problem path. The bound (over all pairs, by the caller)
does not depend on the partition.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from placement.candidates import Candidates, Devices, build_candidates, placed_value
from placement.decisions import SolveStatus
from placement.greedy import all_columns, devices_from_greedy, greedy_order, multi_start, run_greedy
from placement.problem import SolverConfig
from placement.snapshot import Arrays, Snapshot, _subset_wls, residual
from placement.solve import SolveResult, solve
from placement_ext import filter_score_topk

_PROVEN = (SolveStatus.OPTIMAL, SolveStatus.AT_TARGET, SolveStatus.HINT_AT_TARGET, SolveStatus.EMPTY)


def partition_count(n_workloads: int, config: SolverConfig) -> int:
    """How many parts a mesh of ``n_workloads`` is cut into (at least 1)."""
    return max(1, math.ceil(n_workloads / max(1, config.partition_workloads)))


def site_regions(snap: Snapshot) -> list[str]:
    """The region of each site of ``snap`` (index = site id)."""
    region = {f.name: f.region for f in snap.mesh.factories}
    region.update({f.name: f.region for f in snap.mesh.fleets})
    return [region.get(n, "") for n in snap.site_names]


def partition(snap: Snapshot, best_col: NDArray[np.int32], parts: int) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """Region-aware parts: per part, (workload indices, site indices), both sorted.

    ``best_col`` is each workload's best kernel candidate (-1: none; such workloads
    join no part, having no feasible site). Empty parts are dropped."""
    S = snap.n_sites
    regions = site_regions(snap)
    order = sorted(range(S), key=lambda s: (regions[s], snap.site_names[s]))
    placeable = best_col >= 0
    best_site = np.where(placeable, snap.cols["site"][np.maximum(best_col, 0)], -1)
    attract = np.bincount(best_site[placeable], minlength=S).astype(np.float64)
    # cut the region-sorted sites where the attracted workloads reach k/parts of all
    cum = np.cumsum(attract[order])
    total = cum[-1] if S else 0.0
    group_of_pos = np.minimum((cum - attract[order] / 2) * parts // max(total, 1.0), parts - 1).astype(np.int64)
    group_of_site = np.empty(S, dtype=np.int64)
    group_of_site[np.asarray(order, dtype=np.intp)] = group_of_pos
    w_group = np.where(placeable, group_of_site[np.maximum(best_site, 0)], -1)
    out = []
    for g in range(parts):
        w = np.flatnonzero(w_group == g)
        s = np.flatnonzero(group_of_site == g)
        if w.size and s.size:
            out.append((w.astype(np.intp), s.astype(np.intp)))
    return out


def sub_snapshot(snap: Snapshot, widx: NDArray[np.intp], sidx: NDArray[np.intp]) -> tuple[Snapshot, NDArray[np.intp]]:
    """Snapshot of workloads ``widx`` over the columns of sites ``sidx`` (sorted), and
    each of its columns' index in ``snap``. Energy tiers keep the whole mesh's scale,
    so costs compare across parts."""
    sp = snap.cols["site_ptr"].astype(np.intp)
    counts = sp[sidx + 1] - sp[sidx]
    col_idx = np.concatenate([np.arange(sp[s], sp[s + 1], dtype=np.intp) for s in sidx.tolist()] or [np.zeros(0, np.intp)])
    site_map = np.full(snap.n_sites, -1, dtype=np.int64)
    site_map[sidx] = np.arange(sidx.size)
    cols: Arrays = {k: np.ascontiguousarray(v[col_idx]) for k, v in snap.cols.items() if k != "site_ptr"}
    cols["site"] = site_map[snap.cols["site"][col_idx]].astype(np.int32)
    cols["site_ptr"] = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    wls = _subset_wls(snap.wls, widx)
    wls["latency"] = np.ascontiguousarray(snap.wls["latency"][:, col_idx])
    wls["cur_site"] = site_map[wls["cur_site"]].astype(np.int32) if wls["cur_site"].size else wls["cur_site"]
    names = [snap.site_names[s] for s in sidx.tolist()]
    sub = replace(
        snap,
        mesh=replace(snap.mesh, workloads=tuple(snap.mesh.workloads[i] for i in widx.tolist())),
        cols=cols,
        wls=wls,
        col_site_name=[snap.col_site_name[c] for c in col_idx.tolist()],
        col_kind=[snap.col_kind[c] for c in col_idx.tolist()],
        col_model_name=[snap.col_model_name[c] for c in col_idx.tolist()],
        col_tps=snap.col_tps[col_idx],
        col_watts_real=snap.col_watts_real[col_idx],
        site_names=names,
        site_kind=[snap.site_kind[s] for s in sidx.tolist()],
        site_firm_watts=snap.site_firm_watts[sidx],
        site_total_watts=snap.site_total_watts[sidx],
        site_index={n: i for i, n in enumerate(names)},
        keys=[snap.keys[i] for i in widx.tolist()],
        priority=snap.priority[widx],
        demand_units=snap.demand_units[widx],
        value=snap.value[widx],
    )
    return sub, col_idx


@dataclass(slots=True)
class _Rows:
    """Per workload of the whole mesh, its candidate rows in whole-mesh columns."""

    rows: list[list[tuple[int, int, int, int, int]]]  # (col, need, ub, cost per device, devices)

    def take(self, widx: NDArray[np.intp], cands: Candidates, devices: Devices, col_idx: NDArray[np.intp] | None,
             only_placed: bool = False) -> None:
        col = cands.col if col_idx is None else col_idx[cands.col]
        for j, w in enumerate(widx.tolist()):
            r = cands.rows(j)
            if only_placed and not devices[r.start:r.stop].any():
                continue
            self.rows[w] = list(zip(col[r.start:r.stop].tolist(), cands.need[r.start:r.stop].tolist(),
                                    cands.ub[r.start:r.stop].tolist(), cands.cost_per_device[r.start:r.stop].tolist(),
                                    devices[r.start:r.stop].tolist(), strict=True))

    def as_candidates(self) -> tuple[Candidates, Devices]:
        ptr = [0]
        col: list[int] = []
        need: list[int] = []
        ub: list[int] = []
        cpd: list[int] = []
        dev: list[int] = []
        for rows in self.rows:
            for c, n, u, k, d in rows:
                col.append(c)
                need.append(n)
                ub.append(u)
                cpd.append(k)
                dev.append(d)
            ptr.append(len(col))
        return Candidates.from_lists(ptr, col, need, ub, cpd), np.asarray(dev, dtype=np.int64)


@dataclass(slots=True)
class PartitionedResult:
    """The whole mesh's candidates and plan from the parts and the repair."""

    cands: Candidates
    result: SolveResult
    parts: int
    floor_value: int  # the kube-scheduler-order greedy's placed value on the whole mesh
    statuses: list[SolveStatus] = field(default_factory=list)


def _solve_part(sub: Snapshot, config: SolverConfig, deadline: float, scale: float) -> tuple[Candidates, SolveResult]:
    """Kernel, multi-start greedy, candidates and the solve sequence on one part."""
    kout = filter_score_topk(sub.cols, sub.wls, config.partition_top_k, config.threads)
    runs = multi_start(sub, kout)
    cands = build_candidates(sub, kout, all_columns(runs, len(sub.keys)), config.max_cpsat_vars)
    hints = [devices_from_greedy(cands, r) for r in runs]
    return cands, solve(sub, cands, hints, hints[0], None, config, deadline, scale)


def _usage(snap: Snapshot, cands: Candidates, devices: Devices) -> tuple[NDArray[np.float64], ...]:
    """Devices per column, watts per site (all load, non-interruptible load)."""
    cols = snap.cols
    w_of = np.repeat(np.arange(cands.n_workloads), np.diff(cands.ptr))
    c = cands.col.astype(np.intp)
    dev = devices.astype(np.float64)
    pw = dev * cols["watts"][c]
    s = cols["site"][c]
    ni = ~snap.wls["interruptible"][w_of].astype(bool)
    return (np.bincount(c, weights=dev, minlength=snap.n_cols).astype(np.float64),
            np.bincount(s, weights=pw, minlength=snap.n_sites).astype(np.float64),
            np.bincount(s[ni], weights=pw[ni], minlength=snap.n_sites).astype(np.float64))


def partitioned_solve(snap: Snapshot, kout: Arrays, config: SolverConfig, deadline: float) -> PartitionedResult:
    """Steps 1-4 of the module doc; ``kout`` is the kernel's pass over the whole mesh."""
    W = len(snap.keys)
    parts = partition(snap, kout["cand_col"][:, 0] if kout["cand_col"].shape[1] else np.full(W, -1, np.int32),
                      partition_count(W, config))
    rows = _Rows([[] for _ in range(W)])
    statuses: list[SolveStatus] = []
    fallback = False
    wall = False
    cpsat_ms = 0.0
    for widx, sidx in parts:
        sub, col_idx = sub_snapshot(snap, widx, sidx)
        cands, res = _solve_part(sub, config, deadline, config.partition_dtime_scale)
        rows.take(widx, cands, res.devices, col_idx)
        statuses.append(res.status)
        fallback |= res.fallback_used
        wall |= res.wall_limit_hit
        cpsat_ms += res.cpsat_ms
    # repair: the unplaced against what the parts left, on every site
    cands, devices = rows.as_candidates()
    placed = np.asarray([any(r[4] > 0 for r in rs) for rs in rows.rows], dtype=bool)
    unplaced = np.flatnonzero(~placed & (kout["feasible_sites"] > 0)).astype(np.intp)
    if unplaced.size:
        col_used, site_all, site_ni = _usage(snap, cands, devices)
        rest = residual(snap, unplaced, col_used, site_all, site_ni)
        r_cands, r_res = _solve_part(rest, config, deadline, config.partition_dtime_scale)
        rows.take(unplaced, r_cands, r_res.devices, None, only_placed=True)
        statuses.append(r_res.status)
        wall |= r_res.wall_limit_hit
        cpsat_ms += r_res.cpsat_ms
        cands, devices = rows.as_candidates()
    # floor: the kube-scheduler-order greedy on the whole mesh
    whole = run_greedy(snap, greedy_order(snap))
    status = SolveStatus.AT_TARGET if all(s in _PROVEN for s in statuses) else SolveStatus.FEASIBLE
    if int(snap.value[whole.placed].sum()) > placed_value(snap, cands, devices):
        cands = build_candidates(snap, kout, whole.cols, config.max_cpsat_vars)
        devices = devices_from_greedy(cands, whole)
        fallback = True
    result = SolveResult(devices=devices, status=status, fallback_used=fallback, wall_limit_hit=wall,
                         cpsat_ms=cpsat_ms, decided_at=time.perf_counter())
    return PartitionedResult(cands=cands, result=result, parts=len(parts),
                             floor_value=int(snap.value[whole.placed].sum()), statuses=statuses)
