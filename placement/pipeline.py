"""The placement pipeline: snapshot -> filter/score -> greedy -> select -> assign.

``plan(mesh, config, previous=None)`` is the public entry point (re-exported as
``placement.plan``), called by the controller's reconcile core, ``meshctl plan`` and
the benchmarks. Reads like kube-scheduler, but global:

1. snapshot   (placement.snapshot)  the mesh as arrays, latency matrix (topology)
2. filter + score (placement_ext)   fused Cython pass: top-K candidates per workload,
                                    per-filter rejection counts per site
3. greedy     (placement_ext)       one at a time, priority order, best fit: the
                                    CP-SAT hint and the fallback
4. bound      (placement.bound)     Lagrangian upper bound over ALL feasible pairs
5. select     (placement.solver)    CP-SAT on the candidates, time left by the deadline
6. assign     (here + explain)      decisions, site usage, one-line reasons

With ``previous``, :mod:`placement.incremental` may replace steps 2-5 by a re-solve
of the changed + unplaced workloads against residual capacity.
"""

from __future__ import annotations

import math
import time

import numpy as np

from placement import explain
from placement.decisions import (
    KIND_FACTORY,
    PHASE_PLACED,
    PHASE_UNSCHEDULABLE,
    Assignment,
    Plan,
    PoolUsage,
    SiteUsage,
    SolveStats,
    WorkloadDecision,
)
from placement.problem import Mesh, SolverConfig
from placement.snapshot import Snapshot, build
from placement.bound import BOUND_METHOD, full_bound
from placement.solver import (
    Candidates,
    build_candidates,
    devices_from_greedy,
    placed_value,
    plan_cost,
    solve_cpsat,
)
from placement_ext import filter_score_topk, greedy_place


def greedy_order(snap: Snapshot) -> np.ndarray:
    """Priority first (high to low), then input order: the kube-scheduler queue."""
    W = len(snap.keys)
    return np.lexsort((np.arange(W), -snap.priority)).astype(np.int32)


def greedy_orders(snap: Snapshot, kout: dict) -> list[np.ndarray]:
    """Queue orders for the multi-start greedy; the first is the kube-scheduler one.

    The others favour value density (value per watt of the cheapest candidate),
    plain value, and the hardest-to-place first (fewest feasible sites).
    """
    W = len(snap.keys)
    idx = np.arange(W)
    kc, kn = kout["cand_col"], kout["cand_devices"]
    if W and kc.size:
        watts = np.where(kc >= 0, kn * snap.cols["watts"][np.maximum(kc, 0)], np.inf).min(axis=1)
    else:
        watts = np.full(W, np.inf)
    density = snap.value / np.maximum(np.where(np.isfinite(watts), watts, 1e30), 1.0)
    orders = [
        greedy_order(snap),
        np.lexsort((idx, -density)),
        np.lexsort((idx, -snap.value)),
        np.lexsort((idx, kout["feasible_sites"], -snap.priority)),
    ]
    return [o.astype(np.int32) for o in orders]


def feasible_devices(snap: Snapshot, cands: Candidates, devices: np.ndarray) -> bool:
    """Does a devices-per-candidate vector respect every capacity and power limit?"""
    cols = snap.cols
    if cands.n == 0:
        return True
    if (devices < 0).any():
        return False
    used = np.bincount(cands.col, weights=devices, minlength=snap.n_cols)
    if (used > cols["cap_devices"] + 1e-9).any():
        return False
    watts = devices * cols["watts"][cands.col]
    site = cols["site"][cands.col]
    tot = np.bincount(site, weights=watts, minlength=snap.n_sites)
    if (tot > snap.site_total_watts + 1e-6).any():
        return False
    wl = np.repeat(np.arange(len(cands.ptr) - 1), np.diff(cands.ptr))
    ni = ~snap.wls["interruptible"][wl].astype(bool)
    firm = np.bincount(site[ni], weights=watts[ni], minlength=snap.n_sites)
    if (firm > np.minimum(snap.site_firm_watts, snap.site_total_watts) + 1e-6).any():
        return False
    # whole or nothing, within site limits
    for w in range(len(cands.ptr) - 1):
        lo, hi = cands.ptr[w], cands.ptr[w + 1]
        d = devices[lo:hi]
        if d.sum() == 0:
            continue
        on = np.flatnonzero(d > 0)
        if len(on) > snap.wls["site_limit"][w]:
            return False
        if snap.wls["site_limit"][w] <= 1:
            if d[on[0]] != cands.need[lo + on[0]]:
                return False
        elif snap.wls["accel"][w] > 0:
            if d.sum() != snap.wls["accel"][w]:
                return False
        elif (d * cols["tps_milli"][cands.col[lo:hi]]).sum() < snap.wls["tokens_milli"][w]:
            return False
    return True


def hint_from_previous(snap: Snapshot, cands: Candidates, previous: Plan) -> np.ndarray | None:
    """Devices per candidate that repeat a previous plan where it still applies
    (None when the result would break a limit)."""
    dev = np.zeros(cands.n, dtype=np.int64)
    key_index = {k: i for i, k in enumerate(snap.keys)}
    col_of = {(snap.col_site_name[c], snap.col_model_name[c]): c for c in range(snap.n_cols)}
    for key, dec in previous.workloads.items():
        w = key_index.get(key)
        if w is None or not dec.assignments:
            continue
        lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
        chosen = {}
        for a in dec.assignments:
            c = col_of.get((a.site, a.accelerator_model))
            if c is None:
                chosen = None
                break
            idx = np.flatnonzero(cands.col[lo:hi] == c)
            if idx.size == 0:
                chosen = None
                break
            chosen[lo + int(idx[0])] = a.devices
        if not chosen:
            continue
        for i, n in chosen.items():
            dev[i] = n
        if snap.wls["site_limit"][w] <= 1 and any(dev[i] != cands.need[i] for i in chosen):
            dev[lo:hi] = 0  # demand changed: not valid as is
    if not feasible_devices(snap, cands, dev):
        return None
    return dev


def post_solve_reserve_s(n_workloads: int, n_candidates: int) -> float:
    """Wall time kept back from CP-SAT for the assign step and the stats (measured
    at about 40 us per workload on the benchmark machine, doubled) and for what
    CP-SAT spends outside its own time limit (copying the model, per phase)."""
    return 0.3 + 80e-6 * n_workloads + 8e-6 * n_candidates


def plan(mesh: Mesh, config: SolverConfig = SolverConfig(), previous: Plan | None = None) -> Plan:
    """Place every workload of ``mesh``; same input, same plan.

    ``previous`` (optional) is the last plan. When its sites are unchanged it is
    re-solved incrementally (:mod:`placement.incremental`: unchanged placed
    workloads keep their assignments, only changed + unplaced ones are re-solved);
    otherwise it is a hint for the full solve where still valid. Stability between
    plans is driven by each workload's ``current`` assignments (an input).
    The whole call aims to return within ``config.time_limit_s``.
    """
    t0 = time.perf_counter()
    snap = build(mesh, config)
    if previous is not None and getattr(previous, "basis", None) is not None:
        from placement import incremental  # uses this module's helpers

        warm = incremental.replan(snap, config, previous, t0)
        if warm is not None:
            return warm
    return solve_full(snap, config, previous, t0)


def solve_full(snap: Snapshot, config: SolverConfig, previous: Plan | None, t0: float) -> Plan:
    """The cold path: kernel over all pairs, multi-start greedy, bound, CP-SAT."""
    deadline = t0 + config.time_limit_s
    stats = SolveStats()
    W = len(snap.keys)
    stats.num_workloads = W
    stats.num_site_columns = snap.n_cols
    threads = max(1, config.kernel_threads or config.num_workers)
    k0 = time.perf_counter()
    kout = filter_score_topk(snap.cols, snap.wls, config.top_k, threads)
    runs = [
        greedy_place(snap.cols, snap.wls, order, snap.site_firm_watts, snap.site_total_watts)
        for order in greedy_orders(snap, kout)
    ]
    stats.kernel_ms = (time.perf_counter() - k0) * 1e3
    all_cols = np.concatenate([r[0] for r in runs], axis=1)
    all_n = np.concatenate([r[1] for r in runs], axis=1)
    cands = build_candidates(snap, kout, all_cols, all_n, config.max_cpsat_vars)
    stats.num_candidates = cands.n
    greedy_dev = devices_from_greedy(cands, runs[0][0], runs[0][1])  # the kube-scheduler way
    stats.greedy_placed_priority_demand = float(placed_value(snap, cands, greedy_dev))
    stats.greedy_objective = stats.greedy_placed_priority_demand
    hint = greedy_dev
    for r in runs[1:]:  # best of the multi-start greedy is the hint
        d = devices_from_greedy(cands, r[0], r[1])
        if placed_value(snap, cands, d) > placed_value(snap, cands, hint):
            hint = d
    if previous is not None:
        prev = hint_from_previous(snap, cands, previous)
        if prev is not None and placed_value(snap, cands, prev) >= placed_value(snap, cands, greedy_dev):
            hint = prev
    devices = hint
    multipliers = None
    bound_res = None
    target = None
    if config.compute_bound and W:
        bound_res = full_bound(
            snap,
            float(placed_value(snap, cands, hint)),
            threads,
            config.time_limit_s * config.bound_time_fraction,
            config.bound_max_iters,
            getattr(getattr(previous, "basis", None), "multipliers", None),
        )
        multipliers = bound_res.multipliers
        target = math.floor(bound_res.bound * (1.0 - config.target_gap))
    if W == 0 or cands.n == 0:
        stats.status = "EMPTY"
    elif config.use_cpsat:
        c0 = time.perf_counter()
        budget = deadline - c0 - post_solve_reserve_s(W, cands.n)
        try:
            res = solve_cpsat(snap, cands, hint, config, target, budget_s=budget)
        except Exception as exc:  # never crash on a model we built: fall back
            stats.status = f"ERROR: {type(exc).__name__}"
            stats.fallback_used = True
        else:
            stats.status = res.status
            if res.status in ("OPTIMAL", "FEASIBLE", "AT_TARGET", "HINT_AT_TARGET") and feasible_devices(snap, cands, res.devices):
                devices = res.devices
            else:
                stats.fallback_used = True
        stats.cpsat_ms = (time.perf_counter() - c0) * 1e3
    else:
        stats.status = "GREEDY"
        stats.fallback_used = True
    if placed_value(snap, cands, devices) < placed_value(snap, cands, greedy_dev):
        devices = greedy_dev  # never below greedy
        stats.fallback_used = True
    result = assign(snap, kout, cands, devices)
    finish(result, snap, cands, devices, stats, bound_res, multipliers, t0, config.top_k)
    return result


def finish(result: Plan, snap: Snapshot, cands: Candidates, devices: np.ndarray, stats: SolveStats,
           bound_res, multipliers, t0: float, top_k: int) -> None:
    """Fill the objective / bound / gap stats and the warm-start basis of ``result``."""
    from placement.incremental import make_basis

    stats.objective = float(placed_value(snap, cands, devices))
    stats.placed_priority_demand = stats.objective
    if bound_res is not None:
        stats.bound = bound_res.bound
        stats.bound_method = BOUND_METHOD
        stats.bound_iterations = bound_res.iterations
        stats.bound_ms = bound_res.ms
    else:
        stats.bound = stats.objective if stats.status in ("OPTIMAL", "EMPTY") else math.nan
    if math.isfinite(stats.bound):
        stats.gap = max(0.0, (stats.bound - stats.objective) / max(1.0, abs(stats.bound)))
    else:
        stats.gap = math.nan
    stats.placed_workloads = sum(1 for d in result.workloads.values() if d.phase == PHASE_PLACED)
    stats.cost = float(plan_cost(cands, devices))
    result.basis = make_basis(snap, cands, devices, multipliers, top_k)
    stats.wall_ms = (time.perf_counter() - t0) * 1e3
    result.stats = stats


def assign(snap: Snapshot, kout: dict, cands: Candidates, devices: np.ndarray) -> Plan:
    """Turn devices-per-candidate into decisions, site usage and reasons."""
    cols = snap.cols
    mesh = snap.mesh
    W = len(snap.keys)
    total_sites = int(np.count_nonzero(np.diff(cols["site_ptr"]) > 0))
    # column and site usage
    col_used = np.zeros(snap.n_cols, dtype=np.int64)
    site_tot_w = np.zeros(snap.n_sites)
    site_ni_w = np.zeros(snap.n_sites)
    site_int_w = np.zeros(snap.n_sites)
    site_int_ni_w = np.zeros(snap.n_sites)
    site_tps = np.zeros(snap.n_sites)
    site_workloads: list[set[int]] = [set() for _ in range(snap.n_sites)]
    decisions: dict[str, WorkloadDecision] = {}
    for w in range(W):
        lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
        rej = explain.rejection_dict(kout["rejections"][w])
        dec = WorkloadDecision(
            key=snap.keys[w],
            phase=PHASE_UNSCHEDULABLE,
            rejections=rej,
            feasible_sites=int(kout["feasible_sites"][w]),
        )
        for i in range(lo, hi):
            n = int(devices[i])
            if n <= 0:
                continue
            c = int(cands.col[i])
            s = int(cols["site"][c])
            watts = n * snap.col_watts_real[c]  # real units in the report
            site_int_w[s] += n * cols["watts"][c]  # the engine's integer units
            site_tot_w[s] += watts
            if not snap.wls["interruptible"][w]:
                site_int_ni_w[s] += n * cols["watts"][c]
                site_ni_w[s] += watts
            col_used[c] += n
            site_tps[s] += n * snap.col_tps[c]
            site_workloads[s].add(w)
            dec.assignments.append(
                Assignment(
                    site=snap.col_site_name[c],
                    kind=snap.col_kind[c],
                    accelerator_model=snap.col_model_name[c],
                    devices=n,
                    tokens_per_second=n * float(snap.col_tps[c]),
                    power_mw=watts / 1e6,
                    latency_ms=float(cands.latency_ms[i]),
                )
            )
        if dec.assignments:
            dec.phase = PHASE_PLACED
            dec.message = "placed on " + ", ".join(
                f"{a.site} ({a.devices} x {a.accelerator_model})" for a in dec.assignments
            )
        decisions[dec.key] = dec
    # reasons for the unplaced
    for w in range(W):
        dec = decisions[snap.keys[w]]
        if dec.phase == PHASE_PLACED:
            continue
        wd = mesh.workloads[w]
        if dec.feasible_sites == 0:
            dec.message = explain.no_fit_message(total_sites, dec.rejections, wd.max_latency_ms)
            continue
        exhausted: dict[str, list[str]] = {"devices": [], "firm power": [], "power": [], "fleet power cap": []}
        sites_seen: set[int] = set()
        lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
        split = snap.wls["site_limit"][w] > 1
        for i in range(lo, hi):
            c = int(cands.col[i])
            s = int(cols["site"][c])
            need = 1 if split else int(cands.need[i])
            pw = need * cols["watts"][c]
            name = snap.site_names[s]
            if s in sites_seen:
                continue
            if cols["cap_devices"][c] - col_used[c] < need:
                res = "devices"
            elif cols["is_fleet"][c] and site_int_w[s] + pw > snap.site_total_watts[s]:
                res = "fleet power cap"
            elif not wd.interruptible and site_int_ni_w[s] + pw > min(
                snap.site_firm_watts[s], snap.site_total_watts[s]
            ):
                res = "firm power"
            elif site_int_w[s] + pw > snap.site_total_watts[s]:
                res = "power"
            else:
                continue
            sites_seen.add(s)
            exhausted[res].append(name)
        higher = set()
        for s in sites_seen:
            higher.update(o for o in site_workloads[s] if snap.priority[o] > snap.priority[w])
        dec.message = explain.outbid_message(dec.feasible_sites, exhausted, len(higher))
    # site usage
    usage: dict[str, SiteUsage] = {}
    sp = cols["site_ptr"]
    for s, name in enumerate(snap.site_names):
        firm_av = min(snap.site_firm_watts[s], snap.site_total_watts[s]) / 1e6
        flex_av = max(0.0, snap.site_total_watts[s] - snap.site_firm_watts[s]) / 1e6
        tot = site_tot_w[s] / 1e6
        ni = site_ni_w[s] / 1e6
        # non-interruptible load is on firm power (the model keeps it within firm);
        # interruptible load takes flexible power first, firm only for the rest
        flex_cap = flex_av if snap.site_kind[s] == KIND_FACTORY else 0.0
        firm_used = ni + max(0.0, (tot - ni) - flex_cap)
        pools = [
            PoolUsage(snap.col_model_name[c], int(col_used[c]), int(cols["cap_devices"][c]))
            for c in range(sp[s], sp[s + 1])
        ]
        usage[name] = SiteUsage(
            name=name,
            kind=snap.site_kind[s],
            firm_mw_used=firm_used,
            firm_mw_available=firm_av if snap.site_kind[s] == KIND_FACTORY else snap.site_total_watts[s] / 1e6,
            flexible_mw_used=max(0.0, tot - firm_used),
            flexible_mw_available=flex_av if snap.site_kind[s] == KIND_FACTORY else 0.0,
            pools=pools,
            tokens_per_second=float(site_tps[s]),
            tokens_per_joule=float(site_tps[s] / site_tot_w[s]) if site_tot_w[s] > 0 else 0.0,
            workload_count=len(site_workloads[s]),
        )
    return Plan(workloads=decisions, sites=usage)
