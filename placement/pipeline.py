"""The placement pipeline: the public :func:`plan`, its cold path and its warm path.

``plan(mesh, config, previous=None)`` is the entry point (re-exported as
``placement.plan``), called by the controller's reconcile core, ``meshctl plan`` and
the benchmarks. It reads like kube-scheduler, but global:

1. snapshot        (placement.snapshot)   the mesh as arrays, latency matrix
2. filter + score  (placement_ext)        fused Cython pass: top-K candidates per
                                          workload, rejection counts per site
3. greedy          (placement.greedy)     multi-start, one workload at a time,
                   (placement.kube_greedy) and LeastAllocated: the better is the floor
4. bound           (placement.bound)      upper bound over ALL pairs: the LP
                   (placement.lp_bound)   (GLOP) on small meshes, else Lagrangian;
                   (placement.lp_round)   the LP's solution rounded: one more run
5. candidates      (placement.candidates) top-K + the greedy's columns (every
                                          feasible pair on small meshes)
6. solve           (placement.solve)      hint -> target -> CP-SAT A, B -> fallback
                                          -> never below the greedy -> trim
7. assign          (placement.assign)     decisions, usage, reasons (explain)

A huge mesh (more than ``WorkBudgets.partition_min_pairs`` feasible pairs) takes
the partitioned cold path instead of steps 3-6 (:mod:`placement.partition`).

The warm path (``previous`` carries a :class:`~placement.basis.Basis` and the sites
did not change) keeps the unchanged placed workloads as they are and runs steps 2-6
on the changed, new and unplaced ones only, against the capacity the kept ones
leave; the bound still covers the whole mesh. It gives way to the cold path when its
plan, after the floor's repairs (:mod:`placement.warm`, stage 5), would still place
more than ``warm_floor_gap`` less than the kube-scheduler greedy on the whole mesh.

Same mesh + same config (+ same previous plan) = same plan, byte for byte, on a busy
or an idle machine: every budget counts work (kernel passes, greedy runs,
subgradient steps, CP-SAT deterministic time); only ``SolverConfig.time_limit_s``
reads the clock, as a safety net reported in ``SolveStats.wall_limit_hit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from placement import explain, warm
from placement.assign import assign
from placement.basis import Basis, sites_fingerprint
from placement.bound import (
    BOUND_METHOD,
    CPSAT_BOUND_METHOD,
    INCREMENTAL_BOUND_METHOD,
    BoundResult,
    Pairs,
    all_pairs,
    full_bound,
    lagrangian_at,
    workload_terms,
)
from placement.candidates import (
    Candidates,
    Devices,
    build_candidates,
    feasible_devices,
    placed_value,
    rows_of,
)
from placement.decisions import FloorRepair, Plan, SolveStatus
from placement.greedy import GreedyRun, all_columns, devices_from_greedy, greedy_order, multi_start, run_greedy
from placement.kube_greedy import kube_greedy
from placement.lp_round import lp_rounding
from placement.partition import partitioned_solve
from placement.problem import DEFAULT_CONFIG, Mesh, SolverConfig
from placement.report import NextBasis, PathResult, WarmCounts, finish
from placement.snapshot import Snapshot, build, residual
from placement.solve import SolveResult, solve
from placement.trim import trim_surplus
from placement_ext import FILTER_NAMES
from placement_ext.arrays import TopKArrays


def plan(mesh: Mesh, config: SolverConfig = DEFAULT_CONFIG, previous: Plan | None = None) -> Plan:
    """Place every workload of ``mesh``; same input, same plan.

    ``previous`` (optional) is the last plan. When its sites are unchanged it is
    re-solved incrementally (unchanged placed workloads keep their assignments,
    only changed + unplaced ones are re-solved); otherwise it is a hint for the full
    solve where still valid. Stability between plans is driven by each workload's
    ``current`` assignments (an input).
    """
    t0 = time.perf_counter()
    deadline = t0 + config.time_limit_s
    snap = build(mesh, config)
    fallback = ""
    if previous is not None:
        warm = warm_plan(snap, config, previous, previous.basis, t0, deadline) if previous.basis is not None else (
            NO_BASIS)
        if isinstance(warm, Plan):
            return warm
        fallback = warm
    cold = cold_plan(snap, config, previous, t0, deadline)
    cold.stats.warm_fallback = fallback
    return cold


# ---------------------------------------------------------------- cold path


def hint_from_previous(snap: Snapshot, cands: Candidates, previous: Plan) -> Devices | None:
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
        chosen: dict[int, int] = {}
        for a in dec.assignments:
            c = col_of.get((a.site, a.accelerator_model))
            idx = np.flatnonzero(cands.col[lo:hi] == c) if c is not None else np.zeros(0, dtype=np.int64)
            if idx.size == 0:
                chosen = {}
                break
            chosen[lo + int(idx[0])] = a.devices
        for i, n in chosen.items():
            dev[i] = n
        if snap.wls.site_limit[w] <= 1 and any(dev[i] != cands.need[i] for i in chosen):
            dev[lo:hi] = 0  # demand changed: not valid as is
    return dev if feasible_devices(snap, cands, dev) else None


def cold_plan(snap: Snapshot, config: SolverConfig, previous: Plan | None, t0: float, deadline: float) -> Plan:
    """The cold path: kernel over all pairs, multi-start greedy, bound, solve, assign."""
    W = len(snap.keys)
    k0 = time.perf_counter()
    pairs = all_pairs(snap, config.threads) if W and snap.n_cols else None
    top_k = config.budgets.top_k
    if pairs is not None and 0 < pairs.n <= config.budgets.exact_max_pairs:
        # small enough to hand CP-SAT every feasible pair: its proof is then global
        top_k = max(top_k, int(np.diff(pairs.ptr).max()))
    kout = snap.kernels.filter_score_topk(top_k, config.threads)
    if pairs is not None and pairs.n > config.budgets.partition_min_pairs:
        return partitioned_plan(snap, config, pairs, kout, k0, t0, deadline)
    runs = multi_start(snap, kout)
    # LeastAllocated spreading can leave room the cheapest-first greedy uses up: when
    # it places strictly more, it is the hint and the floor (ties keep today's plans)
    kube = kube_greedy(snap, config.threads)
    kube_better = _run_value(snap, kube) > max(_run_value(snap, r) for r in runs)
    floor_run = kube if kube_better else runs[0]  # never below either way
    if kube_better:
        runs.append(kube)
    kernel_ms = (time.perf_counter() - k0) * 1e3
    init = previous.basis.multipliers if previous is not None and previous.basis is not None else None
    bound = None
    lp_better = False
    if config.compute_bound and pairs is not None:
        best_known = max(_run_value(snap, r) for r in runs)
        bound = full_bound(snap, float(best_known), config.threads, bound_steps(config, pairs), init,
                           config.budgets.lp_bound_max_pairs, pairs)
        if bound.lp_share is not None:
            # the LP's choice first: a greedy in that order finds the few big jobs
            # worth more than the many small ones they displace (gang meshes)
            assert bound.lp_pair_share is not None  # solved together with lp_share
            lp_run = lp_rounding(snap, pairs.ptr, pairs.col, pairs.coef, bound.lp_share, bound.lp_pair_share)
            lp_better = _run_value(snap, lp_run) > max(_run_value(snap, r) for r in runs)
            if lp_better:
                runs.append(lp_run)
    cands = build_candidates(snap, kout, all_columns(runs, W), config.budgets.max_cpsat_vars)
    complete = pairs is not None and covers_all_pairs(cands, pairs)
    floor = devices_from_greedy(cands, floor_run)
    # every hint is checked: the LP-guided run is built from parts
    hints = [h for h in (devices_from_greedy(cands, r) for r in runs) if feasible_devices(snap, cands, h)]
    if previous is not None:
        prev = hint_from_previous(snap, cands, previous)
        if prev is not None:
            hints.insert(0, prev)  # first on ties: what runs now keeps running
    result = solve(snap, cands, hints, floor, bound.bound if bound else None, config, deadline)
    out = assign(snap, kout, cands, result.devices)
    terms = None
    if bound is not None and pairs is not None:  # the next warm re-solve evaluates changed workloads only
        terms = dict(zip(snap.keys, workload_terms(snap, pairs, bound.multipliers, config.threads).tolist(),
                         strict=True))
    if bound is not None and complete and result.candidates_bound < bound.bound:
        bound.bound = result.candidates_bound  # CP-SAT's proof covers the whole mesh
        bound.method = CPSAT_BOUND_METHOD
    return finish(out, snap, PathResult(
        cands=cands, solve=result, floor_placed_priority_demand=float(placed_value(snap, cands, floor)), bound=bound,
        kernel_ms=kernel_ms, num_candidates=cands.n,
        next_basis=NextBasis(bound.multipliers if bound else init, terms,
                             warm.waiting_candidates(snap, np.arange(W, dtype=np.intp), kout)),
        hint_source="lp-order" if lp_better else "least-allocated" if kube_better else "cheapest",
        complete_candidates=complete,
    ), config, t0)


def bound_steps(config: SolverConfig, pairs: Pairs) -> int:
    """Subgradient steps for ``pairs``: ``bound_max_iters``, fewer on huge meshes."""
    return min(config.budgets.bound_max_iters, max(10, config.budgets.bound_pair_evaluations // max(1, pairs.n)))


def partitioned_plan(
    snap: Snapshot, config: SolverConfig, pairs: Pairs, kout: TopKArrays, k0: float, t0: float, deadline: float,
) -> Plan:
    """The cold path of a huge mesh: :mod:`placement.partition`, then the bound over
    every pair and the assignment of the whole mesh."""
    # the floor and the bound first: a floor already within partition_target_gap of
    # the bound leaves the parts only the cost to lower (phase A skipped)
    whole = run_greedy(snap, greedy_order(snap))
    floor_value = float(snap.value[whole.placed].sum())
    bound = None
    if config.compute_bound:
        bound = full_bound(snap, floor_value, config.threads, bound_steps(config, pairs), None, 0, pairs)
    at_target = bound is not None and floor_value >= math.floor(bound.bound * (1.0 - config.budgets.partition_target_gap))
    parts = 0
    if at_target:
        # the stop rule at this scale: the greedy is proven within the target, so it
        # is the plan. Re-solving the parts for cost alone was measured to change
        # nothing at 50k x 5k within budgets that fit (0, 1 and 2.5 x: the same cost)
        cands = build_candidates(snap, kout, whole.cols, config.budgets.max_cpsat_vars)
        devices, trimmed = trim_surplus(snap, cands, devices_from_greedy(cands, whole))
        result = SolveResult(devices=devices, status=SolveStatus.HINT_AT_TARGET, fallback_used=True,
                             trimmed_devices=trimmed, decided_at=time.perf_counter())
    else:
        part = partitioned_solve(snap, kout, config, deadline, whole)
        cands, result = part.cands, part.result
        parts = part.parts
    kernel_ms = (time.perf_counter() - k0) * 1e3 - result.cpsat_ms - (bound.ms if bound else 0.0)
    out = assign(snap, kout, cands, result.devices)
    terms = None
    if bound is not None:  # for the next warm re-solve: only changed workloads re-evaluated
        terms = dict(zip(snap.keys, workload_terms(snap, pairs, bound.multipliers, config.threads).tolist(),
                         strict=True))
    return finish(out, snap, PathResult(
        cands=cands, solve=result, floor_placed_priority_demand=floor_value, bound=bound, kernel_ms=kernel_ms,
        num_candidates=cands.n,
        next_basis=NextBasis(bound.multipliers if bound else None, terms,
                             warm.waiting_candidates(snap, np.arange(len(snap.keys), dtype=np.intp), kout)),
        partitions=parts,
        stop_reason=(f"huge mesh: the kube-scheduler-order greedy on the whole mesh was already within the target "
                     f"gap for huge meshes ({config.budgets.partition_target_gap:.2%}) of the bound") if at_target else "",
    ), config, t0)


def covers_all_pairs(cands: Candidates, pairs: Pairs) -> bool:
    """Whether every feasible pair of the mesh is a candidate (with room for a device)."""
    if cands.n < pairs.n:
        return False
    n_cols = int(max(int(cands.col.max(initial=0)), int(pairs.col.max(initial=0)))) + 1
    w_c = np.repeat(np.arange(cands.n_workloads, dtype=np.int64), np.diff(cands.ptr))
    w_p = np.repeat(np.arange(cands.n_workloads, dtype=np.int64), np.diff(pairs.ptr))
    have = w_c * n_cols + cands.col.astype(np.int64)
    need = w_p * n_cols + pairs.col.astype(np.int64)
    return bool(np.isin(need, have).all())


def _run_value(snap: Snapshot, run: GreedyRun) -> int:
    """Phase A's objective of a greedy run (priority-weighted demand placed)."""
    return int(snap.value[run.placed].sum())


# ---------------------------------------------------------------- warm path


def _combined_reasons(
    snap: Snapshot, previous: Plan, free: NDArray[np.intp], kout_raw: TopKArrays, carried: Iterable[int]
) -> TopKArrays:
    """Per-workload filter rejections and feasible-site counts for ``assign``: the
    re-solved workloads (``free``) from this run of the kernel; those left unplaced as
    they were (``carried``) keep the previous plan's (same spec, same sites); ``assign``
    reads no other (the kept workloads keep their whole decision)."""
    W = len(snap.keys)
    rej = np.zeros((W, len(FILTER_NAMES)), dtype=np.int32)
    feas = np.zeros(W, dtype=np.int32)
    rej[free] = kout_raw["rejections"]
    feas[free] = kout_raw["feasible_sites"]
    for w in carried:
        d = previous.workloads[snap.keys[w]]
        feas[w] = d.feasible_sites
        for k, v in d.rejections.items():
            rej[w, explain.FILTER_OF_LABEL[k]] = v
    return {"rejections": rej, "feasible_sites": feas}


# why the warm path gave way to the cold one (SolveStats.warm_fallback)
NO_BASIS = "the previous plan has no basis"
TOP_K_CHANGED = "top_k changed"
SITES_CHANGED = "the sites changed"
KEPT_DO_NOT_FIT = "the kept assignments do not fit"
BELOW_FLOOR = "the warm plan, repaired toward the floor, placed less than the kube-scheduler-style greedy"
NOT_FEASIBLE = "the warm plan was not feasible"
MOSTLY_CHANGED = "more of the workloads changed than WorkBudgets.warm_max_changed_share"
REPAIR_TOO_LARGE = ("the warm plan placed less than the kube-scheduler-style greedy, and repairing it would "
                    "re-solve more than WorkBudgets.warm_repair_max_share of the workloads")


def warm_plan(
    snap: Snapshot, config: SolverConfig, previous: Plan, basis: Basis, t0: float, deadline: float
) -> Plan | str:
    """Re-solve what a change can affect (:mod:`placement.warm`, stages 1-5), or say
    why the cold path must run (the reasons above: the sites or ``top_k`` changed,
    most workloads changed, the kept assignments do not fit, or the result places less
    than the kube-scheduler greedy on the whole mesh and the repair toward it is too
    large or falls short)."""
    if basis.top_k != config.budgets.top_k:
        return TOP_K_CHANGED
    if basis.sites_fp != sites_fingerprint(snap):
        return SITES_CHANGED
    W = len(snap.keys)
    k0 = time.perf_counter()
    sc = warm.scope(snap, basis)
    if sc.changed.size > config.budgets.warm_max_changed_share * W:
        return MOSTLY_CHANGED
    kept_rows = {w: basis.chosen[snap.keys[w]] for w in np.flatnonzero(sc.kept).tolist()}
    bound = None
    new_terms = None
    upper = None
    if config.compute_bound and W and snap.n_cols:
        # the Lagrangian bound of a big mesh is evaluated again for the changed workloads
        # only; a small mesh's LP (or CP-SAT's proof) is tighter than the Lagrangian at
        # its duals, and cheap: solved again
        if (basis.terms is not None and basis.multipliers is not None
                and previous.stats.bound_method in (BOUND_METHOD, INCREMENTAL_BOUND_METHOD)):
            bound, new_terms = _incremental_bound(snap, basis, sc.same, config.threads)
        else:
            pairs = all_pairs(snap, config.threads)
            steps = min(config.budgets.warm_bound_max_iters, max(5, bound_steps(config, pairs) // 4))
            bound = full_bound(snap, 0.0, config.threads, steps, basis.multipliers, config.budgets.lp_bound_max_pairs, pairs)
            new_terms = dict(zip(snap.keys, workload_terms(snap, pairs, bound.multipliers, config.threads).tolist(),
                                 strict=True))
        upper = bound.bound
    # round 1, greedy only: where the changed workloads land and what they free
    first = warm.resolve(snap, kept_rows, sc.changed, [], None, replace(config, use_cpsat=False), deadline)
    if first is None:
        return KEPT_DO_NOT_FIT
    # warm preemption: victims of changed workloads the greedy left unplaced; and the
    # unplaced, unchanged workloads that now find room where a change freed it
    displaced = np.asarray(warm.victims(snap, first, kept_rows, sc.changed), dtype=np.intp)
    helped = warm.helped(snap, basis, sc, first)
    # round 2, CP-SAT: all of them together, hinted with round 1's plan (the victims
    # where they are): it moves them only to place more
    free = np.union1d(np.union1d(sc.changed, displaced), helped).astype(np.intp)
    prior = {w: rows for w in free.tolist() if (rows := [r for r in rows_of(first.cands, w, first.devices) if r[4] > 0])}
    gone = set(displaced.tolist())
    res = warm.resolve(snap, {w: r for w, r in kept_rows.items() if w not in gone}, free, [prior], upper, config,
                       deadline)
    if res is None:
        return KEPT_DO_NOT_FIT
    floor_run = warm.floor_run(snap)
    floor = warm.floor_value(snap, floor_run)
    repaired, repair_step = 0, FloorRepair.NONE
    # within warm_floor_gap of the floor the plan is kept as it is; beyond it the floor's
    # preemptions first (they move few), then the repair a cascade needs (it moves what
    # the greedy from scratch places differently)
    if warm.plan_value(snap, res) < floor * (1.0 - config.budgets.warm_floor_gap):
        again = warm.preempt_toward_floor(snap, res, floor_run, upper, config, deadline)
        if again is not None and warm.plan_value(snap, again) >= floor:
            repaired, repair_step = int(again.free.size), FloorRepair.PREEMPTION
            res = replace(again, sub_candidates=res.sub_candidates + again.sub_candidates)
        elif (in_place := warm.in_place_toward_floor(snap, res, floor, upper, config, deadline)) is not None and \
                warm.plan_value(snap, in_place) >= floor * (1.0 - config.budgets.warm_floor_gap):
            repaired, repair_step = int(in_place.free.size), FloorRepair.IN_PLACE
            res = replace(in_place, sub_candidates=res.sub_candidates + in_place.sub_candidates)
        else:
            repair = warm.repair_scope(snap, res, floor_run)
            if repair.free.size > config.budgets.warm_repair_max_share * W:
                short = (floor - warm.plan_value(snap, res)) / max(1.0, floor)
                return f"{REPAIR_TOO_LARGE} ({short:.4%} below it; {repair.free.size} of {W} workloads to re-solve)"
            towards = warm.toward_floor(snap, repair, upper, config, deadline)
            repaired, repair_step = int(repair.free.size), FloorRepair.RESOLVE
            if towards is None or warm.plan_value(snap, towards) < floor:
                return BELOW_FLOOR  # worse than the kube-scheduler way: full solve instead
            res = replace(towards, sub_candidates=res.sub_candidates + towards.sub_candidates)
    if not feasible_devices(snap, res.cands, res.devices):  # defensive: never trade correctness
        return NOT_FEASIBLE
    kernel_ms = (time.perf_counter() - k0) * 1e3 - res.result.cpsat_ms - (bound.ms if bound else 0.0)
    # unplaced before, unchanged and not re-solved: their reason stands (unless its
    # holders moved: assign checks)
    resolved_mask = np.zeros(W, dtype=bool)
    resolved_mask[res.free] = True
    carried = {w: previous.workloads[snap.keys[w]] for w in np.flatnonzero(~sc.kept & ~resolved_mask).tolist()
               if snap.keys[w] in previous.workloads}
    kept = {w: previous.workloads[snap.keys[w]] for w in np.flatnonzero(sc.kept & ~resolved_mask).tolist()}
    out = assign(snap, _combined_reasons(snap, previous, res.free, res.kout, carried), res.cands, res.devices, carried,
                 kept)
    waiting = dict(basis.waiting)
    waiting.update(warm.waiting_candidates(snap, res.free, res.kout))
    result = replace(res.result, devices=res.devices)  # the whole plan's, not the re-solved part's
    return finish(out, snap, PathResult(
        cands=res.cands, solve=result, floor_placed_priority_demand=floor, bound=bound, kernel_ms=kernel_ms,
        num_candidates=res.sub_candidates,
        next_basis=NextBasis(bound.multipliers if bound else basis.multipliers, new_terms, waiting, sc.fingerprints),
        warm=WarmCounts(fixed_workloads=W - int(res.free.size), resolved_workloads=int(res.free.size),
                        preemption_candidates=int(displaced.size), floor_repair_workloads=repaired,
                        floor_repair=repair_step),
    ), config, t0)


def _incremental_bound(
    snap: Snapshot, basis: Basis, same: NDArray[np.bool_], threads: int
) -> tuple[BoundResult, dict[str, float]]:
    """The Lagrangian bound of ``snap`` at the previous plan's multipliers: the kept
    terms of workloads with the ``same`` spec (same pairs and prices: the sites are
    unchanged) plus those of changed and new ones, evaluated now; and the terms for
    the next re-solve."""
    t0 = time.perf_counter()
    assert basis.terms is not None and basis.multipliers is not None  # checked by the caller
    terms: dict[str, float] = {}
    changed: list[int] = []
    for w, key in enumerate(snap.keys):
        old = basis.terms.get(key)
        if old is not None and same[w]:
            terms[key] = old
        else:
            changed.append(w)
    idx = np.asarray(changed, dtype=np.intp)
    none_c, none_s = np.zeros(snap.n_cols), np.zeros(snap.n_sites)
    sub = residual(snap, idx, none_c, none_s, none_s)
    fresh = workload_terms(sub, all_pairs(sub, threads), basis.multipliers, threads)
    terms.update(zip(sub.keys, fresh.tolist(), strict=True))
    bound = lagrangian_at(snap, basis.multipliers, float(sum(terms.values())))
    res = BoundResult(bound=bound, multipliers=basis.multipliers, iterations=0, ms=(time.perf_counter() - t0) * 1e3,
                      method=INCREMENTAL_BOUND_METHOD)
    return res, terms
