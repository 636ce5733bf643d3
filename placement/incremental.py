"""Warm re-solve: keep what did not change, re-solve only the rest.

Called by :func:`placement.pipeline.plan` when ``previous`` carries a :class:`Basis`
(every plan does, in ``Plan.basis``). When the sites are unchanged (same columns,
capacities, power, prices, latencies: one fingerprint over the snapshot's column
arrays) and ``top_k`` is the same:

1. workloads whose spec is unchanged (fingerprint of the ``WorkloadDemand`` without
   its ``current`` assignments, which only feed the stability tier) and that were
   placed keep their columns and devices, fixed;
2. the changed, new and previously unplaced workloads are scored by the kernel
   (only those rows) against the raw capacity (for their reasons) and against the
   residual capacity left by the fixed ones (for their candidates), placed by the
   multi-start greedy, then by CP-SAT against the residual capacity
   (``warm_time_fraction`` of ``time_limit_s``);
3. the bound is the Lagrangian over all pairs, warm-started from the previous
   plan's multipliers.

It returns ``None`` (the caller then does a full solve, hinted with ``previous``)
when the sites changed, when the fixed assignments do not fit (cannot happen with
unchanged sites, checked anyway), or when the result places less priority-weighted
demand than the kube-scheduler greedy on the whole new mesh.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from placement.bound import full_bound
from placement.decisions import Plan, SolveStats
from placement.problem import SolverConfig, WorkloadDemand
from placement.snapshot import Snapshot
from placement.solver import (
    Candidates,
    build_candidates,
    devices_from_greedy,
    placed_mask,
    placed_value,
    solve_cpsat,
)
from placement_ext import FILTER_NAMES, filter_score_topk, greedy_place


@dataclass(slots=True)
class Basis:
    """What a later warm re-solve needs from this plan (engine-private)."""

    sites_fp: str
    top_k: int
    # each workload's demand without ``current``: compared by equality, not by hash,
    # so a changed spec can never pass for an unchanged one
    workload_fp: dict[str, WorkloadDemand]
    # per placed workload: [(column, need, ub, cost_per_device, latency_ms, devices)]
    chosen: dict[str, list[tuple[int, int, int, int, float, int]]]
    multipliers: np.ndarray | None


def sites_fingerprint(snap: Snapshot) -> str:
    """Hash of everything about the sites the engine uses (columns, budgets, latency)."""
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(snap.cols):
        h.update(k.encode())
        h.update(np.ascontiguousarray(snap.cols[k]).tobytes())
    h.update(np.ascontiguousarray(snap.wls["latency"]).tobytes())
    h.update(np.ascontiguousarray(snap.site_firm_watts).tobytes())
    h.update(np.ascontiguousarray(snap.site_total_watts).tobytes())
    h.update("\0".join([*snap.site_names, *snap.col_model_name, *snap.latency.regions]).encode())
    return h.hexdigest()


def workload_fingerprint(w: WorkloadDemand) -> WorkloadDemand:
    """The demand as the engine sees it, minus ``current`` (only the stability tier)."""
    return replace(w, current=())


def make_basis(snap: Snapshot, cands: Candidates, devices: np.ndarray, multipliers, top_k: int) -> Basis:
    chosen: dict[str, list] = {}
    for w in np.flatnonzero(placed_mask(cands, devices)):
        lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
        if lo == hi:
            continue
        rows = [
            (int(cands.col[i]), int(cands.need[i]), int(cands.ub[i]), int(cands.cost_per_device[i]),
             float(cands.latency_ms[i]), int(devices[i]))
            for i in range(lo, hi)
            if devices[i] > 0
        ]
        if rows:
            chosen[snap.keys[w]] = rows
    return Basis(
        sites_fp=sites_fingerprint(snap),
        top_k=top_k,
        workload_fp={w.key: workload_fingerprint(w) for w in snap.mesh.workloads},
        chosen=chosen,
        multipliers=multipliers,
    )


def _subset_wls(wls: dict, idx: np.ndarray) -> dict:
    """The kernel's workload arrays restricted to rows ``idx`` (CSR lists re-based)."""
    out = {}
    for k, v in wls.items():
        if k in ("user_ptr", "user_region", "user_weight", "cur_ptr", "cur_site", "latency"):
            continue
        out[k] = np.ascontiguousarray(v[idx])
    for ptr_k, items in (("user_ptr", ("user_region", "user_weight")), ("cur_ptr", ("cur_site",))):
        ptr = wls[ptr_k]
        lo, hi = ptr[idx], ptr[idx + 1]
        new_ptr = np.concatenate(([0], np.cumsum(hi - lo))).astype(ptr.dtype)
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(idx) else np.zeros(0, int)
        out[ptr_k] = new_ptr
        for it in items:
            out[it] = np.ascontiguousarray(wls[it][take.astype(np.intp)]) if take.size else wls[it][:0]
    out["latency"] = wls["latency"]
    return out


def _sub_snapshot(snap: Snapshot, idx: np.ndarray, col_used, site_all, site_ni) -> Snapshot:
    """Snapshot of workloads ``idx`` against the capacity left by the fixed ones."""
    total = snap.site_total_watts - site_all
    firm = np.minimum(snap.site_firm_watts, snap.site_total_watts) - site_ni
    cols = dict(snap.cols)
    site = snap.cols["site"]
    cols["cap_devices"] = snap.cols["cap_devices"] - col_used
    cols["total_watts"] = total[site]
    cols["firm_watts"] = firm[site]
    mesh = replace(snap.mesh, workloads=tuple(snap.mesh.workloads[i] for i in idx))
    return replace(
        snap,
        mesh=mesh,
        cols=cols,
        wls=_subset_wls(snap.wls, idx),
        site_firm_watts=firm,
        site_total_watts=total,
        keys=[snap.keys[i] for i in idx],
        priority=snap.priority[idx],
        demand_units=snap.demand_units[idx],
        value=snap.value[idx],
    )


def _merge_kout(first: dict, second: dict) -> dict:
    """Candidates of two kernel runs side by side (``first`` kept first)."""
    return {k: np.concatenate([first[k], second[k]], axis=1) for k in
            ("cand_col", "cand_cost", "cand_devices", "cand_latency_ms")}


def replan(snap: Snapshot, config: SolverConfig, previous: Plan, t0: float) -> Plan | None:
    """Incremental re-solve against ``previous`` (see the module doc), or ``None``."""
    from placement.pipeline import assign, finish, greedy_order, greedy_orders

    basis: Basis = previous.basis
    if not isinstance(basis, Basis) or basis.top_k != config.top_k:
        return None
    if basis.sites_fp != sites_fingerprint(snap):
        return None
    W = len(snap.keys)
    cols = snap.cols
    threads = max(1, config.kernel_threads or config.num_workers)
    fixed = np.zeros(W, dtype=bool)
    for wi, w in enumerate(snap.mesh.workloads):
        if w.key in basis.chosen and basis.workload_fp.get(w.key) == workload_fingerprint(w):
            fixed[wi] = True
    # usage of the fixed assignments
    col_used = np.zeros(snap.n_cols)
    site_all = np.zeros(snap.n_sites)
    site_ni = np.zeros(snap.n_sites)
    intr = snap.wls["interruptible"]
    for wi in np.flatnonzero(fixed):
        for c, _n, _ub, _cpd, _lat, d in basis.chosen[snap.keys[wi]]:
            s = int(cols["site"][c])
            col_used[c] += d
            site_all[s] += d * cols["watts"][c]
            if not intr[wi]:
                site_ni[s] += d * cols["watts"][c]
    free = np.flatnonzero(~fixed)
    sub = _sub_snapshot(snap, free, col_used, site_all, site_ni)
    if (sub.cols["cap_devices"] < 0).any() or (sub.site_total_watts < 0).any() or (sub.site_firm_watts < 0).any():
        return None
    stats = SolveStats(warm=True, num_workloads=W, num_site_columns=snap.n_cols,
                       fixed_workloads=int(fixed.sum()), resolved_workloads=int(free.size))
    k0 = time.perf_counter()
    kout_raw = filter_score_topk(snap.cols, sub.wls, config.top_k, threads)  # reasons
    kout_res = filter_score_topk(sub.cols, sub.wls, config.top_k, threads)  # room left
    runs = [greedy_place(sub.cols, sub.wls, o, sub.site_firm_watts, sub.site_total_watts)
            for o in greedy_orders(sub, kout_res)] if free.size else []
    # the kube-scheduler greedy on the whole new mesh: the floor for this plan
    g_cols, g_n, g_placed = greedy_place(cols, snap.wls, greedy_order(snap), snap.site_firm_watts,
                                         snap.site_total_watts)
    stats.kernel_ms = (time.perf_counter() - k0) * 1e3
    greedy_value = float(snap.value[g_placed].sum())
    stats.greedy_objective = stats.greedy_placed_priority_demand = greedy_value
    sub_dev = np.zeros(0, dtype=np.int64)
    sub_cands = None
    if free.size:
        all_cols = np.concatenate([r[0] for r in runs], axis=1)
        all_n = np.concatenate([r[1] for r in runs], axis=1)
        sub_cands = build_candidates(sub, _merge_kout(kout_res, kout_raw), all_cols, all_n,
                                     config.max_cpsat_vars)
        hint = devices_from_greedy(sub_cands, runs[0][0], runs[0][1])
        for r in runs[1:]:
            d = devices_from_greedy(sub_cands, r[0], r[1])
            if placed_value(sub, sub_cands, d) > placed_value(sub, sub_cands, hint):
                hint = d
        sub_dev = hint
        stats.status = "GREEDY"
        if config.use_cpsat and sub_cands.n:
            c0 = time.perf_counter()
            budget = config.time_limit_s * config.warm_time_fraction - (c0 - t0)
            try:
                res = solve_cpsat(sub, sub_cands, hint, config, None, budget_s=max(0.1, budget))
            except Exception as exc:  # never crash on a model we built
                stats.status = f"ERROR: {type(exc).__name__}"
            else:
                stats.status = res.status
                if res.status in ("OPTIMAL", "FEASIBLE") and placed_value(sub, sub_cands, res.devices) >= placed_value(sub, sub_cands, hint):
                    sub_dev = res.devices
            stats.cpsat_ms = (time.perf_counter() - c0) * 1e3
        stats.num_candidates = sub_cands.n
    cands, devices = _combine(snap, basis, fixed, free, sub_cands, sub_dev)
    value = float(placed_value(snap, cands, devices))
    if value < greedy_value:
        return None  # worse than the kube-scheduler way: full solve instead
    from placement.pipeline import feasible_devices

    if not feasible_devices(snap, cands, devices):  # defensive: never trade correctness
        return None
    bound_res = None
    if config.compute_bound:
        bound_res = full_bound(snap, value, threads, config.time_limit_s * config.bound_time_fraction * 0.5,
                               config.bound_max_iters // 4, basis.multipliers)
    kout = _combined_reasons(snap, previous, fixed, free, kout_raw)
    result = assign(snap, kout, cands, devices)
    stats.status = f"INCREMENTAL {stats.status}"
    finish(result, snap, cands, devices, stats, bound_res,
           bound_res.multipliers if bound_res is not None else basis.multipliers, t0, config.top_k)
    return result


def _combine(snap, basis, fixed, free, sub_cands, sub_dev) -> tuple[Candidates, np.ndarray]:
    """Fixed rows (from the basis) and re-solved rows as one candidate list."""
    W = len(snap.keys)
    pos = np.full(W, -1, dtype=np.int64)
    pos[free] = np.arange(free.size)
    ptr = [0]
    col, need, ub, cpd, lat, dev = [], [], [], [], [], []
    for w in range(W):
        if fixed[w]:
            for c, n, u, k, l, d in basis.chosen[snap.keys[w]]:
                col.append(c); need.append(n); ub.append(u); cpd.append(k); lat.append(l); dev.append(d)
        elif sub_cands is not None:
            j = pos[w]
            lo, hi = int(sub_cands.ptr[j]), int(sub_cands.ptr[j + 1])
            col.extend(sub_cands.col[lo:hi].tolist())
            need.extend(sub_cands.need[lo:hi].tolist())
            ub.extend(sub_cands.ub[lo:hi].tolist())
            cpd.extend(sub_cands.cost_per_device[lo:hi].tolist())
            lat.extend(sub_cands.latency_ms[lo:hi].tolist())
            dev.extend(sub_dev[lo:hi].tolist())
        ptr.append(len(col))
    cands = Candidates.from_lists(ptr, col, need, ub, cpd, lat)
    return cands, np.asarray(dev, dtype=np.int64)


def _combined_reasons(snap, previous, fixed, free, kout_raw) -> dict:
    """Per-workload filter rejections and feasible-site counts for ``assign``:
    fixed workloads keep the previous plan's (same spec, same sites), the others come
    from this run of the kernel."""
    W = len(snap.keys)
    names = {n: i for i, n in enumerate(FILTER_NAMES)}
    rej = np.zeros((W, len(FILTER_NAMES)), dtype=np.int32)
    feas = np.zeros(W, dtype=np.int32)
    rej[free] = kout_raw["rejections"]
    feas[free] = kout_raw["feasible_sites"]
    for w in np.flatnonzero(fixed):
        d = previous.workloads[snap.keys[w]]
        feas[w] = d.feasible_sites
        for k, v in d.rejections.items():
            rej[w, names[k]] = v
    return {"rejections": rej, "feasible_sites": feas}
