"""The warm path: re-solve what a change can affect, keep everything else as it is.

Called by :func:`placement.pipeline.plan` when ``previous`` carries a
:class:`~placement.basis.Basis` and the sites did not change. Stages, each a function
below:

1. **scope** (:func:`scope`): the changed and new workloads (spec differs from the
   basis) go through the filter-and-score kernel against the whole capacity; the
   sites they could use, and the sites whose capacity a changed or removed workload
   frees, are the *affected* sites. An unplaced, unchanged workload is re-solved only
   when one of its candidate sites (kept in the basis) is affected: nothing else
   changed for it since it last found no room.
2. **re-solve** (:func:`resolve`): the scope against the capacity the kept workloads
   leave (:func:`placement.snapshot.residual`): multi-start greedy, candidates, the
   solve sequence of :mod:`placement.solve`.
3. **warm preemption**: a re-solved workload still unplaced may displace kept
   workloads of strictly lower priority on its candidate sites, as kube-scheduler's
   preemption would: those join the scope and the re-solve runs once more, hinted
   with the first round's plan and the displaced ones where they were, so the
   second round only moves them when that places more priority-weighted demand.
4. **floor**: the kube-scheduler-order greedy over the whole mesh; a warm plan below
   it gives way to the cold path (:attr:`WarmOutcome.fell_back` counts it; the
   benchmarks report how often).

Deterministic: each stage is a function of the snapshot and the basis (no clock
except the solve sequence's wall-clock safety net).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.basis import Basis, ChosenRow, workload_fingerprint
from placement.candidates import (
    Candidates,
    Devices,
    Row,
    build_candidates,
    feasible_devices,
    from_rows,
    placed_mask,
    placed_value,
    rows_of,
)
from placement.greedy import all_columns, devices_from_greedy, greedy_order, multi_start, run_greedy
from placement.problem import SolverConfig
from placement.snapshot import Arrays, Snapshot, residual
from placement.solve import SolveResult, solve
from placement_ext import filter_score_topk


@dataclass(frozen=True, slots=True)
class Scope:
    """What a change can affect (stage 1)."""

    same: NDArray[np.bool_]  # [W] spec as in the basis
    kept: NDArray[np.bool_]  # [W] same spec and placed in the previous plan
    changed: NDArray[np.intp]  # changed and new workloads
    helped: NDArray[np.intp]  # unplaced, unchanged workloads with an affected candidate site
    affected_sites: NDArray[np.bool_]  # [sites]


@dataclass(slots=True)
class Resolved:
    """One re-solve of ``free`` against what the others leave (stage 2)."""

    free: NDArray[np.intp]  # the re-solved workloads (indices of the whole snapshot)
    sub: Snapshot
    kout: Arrays  # the kernel over ``free`` against the WHOLE capacity: reasons, candidate sites
    cands: Candidates  # the whole plan's candidates (kept rows + re-solved ones)
    devices: Devices  # the whole plan's devices
    result: SolveResult
    sub_candidates: int


def candidate_sites(snap: Snapshot, kout: Arrays) -> list[NDArray[np.int32]]:
    """Per kernel row, the distinct sites of its top-K candidate columns."""
    cc = kout["cand_col"]
    site = snap.cols["site"]
    return [np.unique(site[row[row >= 0]]).astype(np.int32) for row in cc]


def _subset(snap: Snapshot, idx: NDArray[np.intp]) -> Snapshot:
    none_c, none_s = np.zeros(snap.n_cols), np.zeros(snap.n_sites)
    return residual(snap, idx, none_c, none_s, none_s)


def scope(snap: Snapshot, basis: Basis, config: SolverConfig) -> tuple[Scope, Arrays]:
    """Stage 1 (see the module doc); also returns the kernel's output for the changed
    workloads (reused as their reasons)."""
    W = len(snap.keys)
    same = np.fromiter((basis.workload_fp.get(w.key) == workload_fingerprint(w) for w in snap.mesh.workloads),
                       dtype=bool, count=W)
    placed_before = np.fromiter((k in basis.chosen for k in snap.keys), dtype=bool, count=W)
    kept = same & placed_before
    changed = np.flatnonzero(~same)
    affected = np.zeros(snap.n_sites, dtype=bool)
    site = snap.cols["site"]
    # capacity freed: the sites of changed and removed workloads' previous placements
    now_same = {snap.keys[w] for w in np.flatnonzero(same).tolist()}
    for key, rows in basis.chosen.items():
        if key not in now_same:
            for c, *_ in rows:
                affected[int(site[c])] = True
    kout = filter_score_topk(snap.cols, _subset(snap, changed).wls, config.top_k, config.threads)
    for sites in candidate_sites(snap, kout):
        affected[sites] = True
    helped = [w for w in np.flatnonzero(same & ~placed_before).tolist()
              if affected[basis.candidate_sites.get(snap.keys[w], _NO_SITES)].any()]
    return Scope(same=same, kept=kept, changed=changed, helped=np.asarray(helped, dtype=np.intp),
                 affected_sites=affected), kout


_NO_SITES = np.zeros(0, dtype=np.int32)


def _usage(snap: Snapshot, rows_of_kept: dict[int, list[ChosenRow] | list[Row]]) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Devices per column, all watts and firm (non-interruptible) watts per site that
    the kept workloads take."""
    col_used = np.zeros(snap.n_cols)
    site_all = np.zeros(snap.n_sites)
    site_ni = np.zeros(snap.n_sites)
    site, watts, intr = snap.cols["site"], snap.cols["watts"], snap.wls["interruptible"]
    for w, rows in rows_of_kept.items():
        for c, _n, _ub, _cpd, d in rows:
            s = int(site[c])
            col_used[c] += d
            site_all[s] += d * watts[c]
            if not intr[w]:
                site_ni[s] += d * watts[c]
    return col_used, site_all, site_ni


def resolve(
    snap: Snapshot,
    kept_rows: dict[int, list[ChosenRow] | list[Row]],
    free: NDArray[np.intp],
    prior: dict[int, list[Row]],
    upper_total: float | None,
    config: SolverConfig,
    deadline: float,
) -> Resolved | None:
    """Stage 2: re-solve ``free`` against the capacity ``kept_rows`` (workload index →
    its rows, global columns) leave. ``prior`` (workload index → rows) is a placement of
    some free workloads known to fit together with the kept ones: the first hint, so
    the solve only moves them for more placed value. ``upper_total`` bounds the whole
    plan's phase-A value (None: no bound). None when the kept rows do not fit (cannot
    happen with unchanged sites; checked anyway)."""
    W = len(snap.keys)
    col_used, site_all, site_ni = _usage(snap, kept_rows)
    sub = residual(snap, free, col_used, site_all, site_ni)
    if (sub.cols["cap_devices"] < 0).any() or (sub.site_total_watts < 0).any() or (sub.site_firm_watts < 0).any():
        return None
    kout_raw = filter_score_topk(snap.cols, sub.wls, config.top_k, config.threads)  # reasons, sites
    kout_res = filter_score_topk(sub.cols, sub.wls, config.top_k, config.threads)  # room left
    runs = multi_start(sub, kout_res)
    pos = {int(w): i for i, w in enumerate(free.tolist())}
    width = max((len(r) for r in prior.values()), default=0)
    prior_cols = np.full((free.size, width), -1, dtype=np.int32)
    for w, rows in prior.items():
        for j, row in enumerate(rows):
            prior_cols[pos[w], j] = row[0]
    merged = {k: np.concatenate([kout_res[k], kout_raw[k]], axis=1) for k in ("cand_col", "cand_cost", "cand_devices")}
    sub_cands = build_candidates(sub, merged, np.concatenate([all_columns(runs, int(free.size)), prior_cols], axis=1),
                                 config.max_cpsat_vars)
    hints = [devices_from_greedy(sub_cands, r) for r in runs]
    if prior:
        hint = np.zeros(sub_cands.n, dtype=np.int64)
        for w, rows in prior.items():
            r = sub_cands.rows(pos[w])
            for c, *_rest, d in rows:
                hint[r.start + int(np.flatnonzero(sub_cands.col[r.start:r.stop] == c)[0])] += d
        if feasible_devices(sub, sub_cands, hint):
            hints.insert(0, hint)
    fixed_value = float(sum(int(snap.value[w]) for w in kept_rows))
    upper = None if upper_total is None else upper_total - fixed_value
    result = solve(sub, sub_cands, hints, hints[0], upper, config, deadline, config.warm_dtime_scale)
    sub_index = np.full(W, -1, dtype=np.int64)
    sub_index[free] = np.arange(free.size)
    plan_rows: list[list[Row]] = []
    for w in range(W):
        if sub_index[w] >= 0:
            plan_rows.append(rows_of(sub_cands, int(sub_index[w]), result.devices))
        else:
            plan_rows.append(list(kept_rows.get(w, [])))
    cands, devices = from_rows(plan_rows)
    return Resolved(free=free, sub=sub, kout=kout_raw, cands=cands, devices=devices, result=result,
                    sub_candidates=sub_cands.n)


def victims(snap: Snapshot, resolved: Resolved, kept_rows: dict[int, list[ChosenRow] | list[Row]],
            preemptors: NDArray[np.intp]) -> list[int]:
    """Stage 3, kube-scheduler's preemption: for each of ``preemptors`` (changed
    workloads) the re-solve left unplaced, highest priority first, the one candidate
    column where evicting kept workloads of strictly lower priority (lowest priority
    first, then least value, then index) frees room for its whole demand, choosing
    the column whose highest victim priority is lowest, then the fewest victims, then
    the cheapest. Returns the victims (indices of the whole snapshot), sorted; they
    and the preemptors are re-solved together in the next round."""
    placed = placed_mask(resolved.cands, resolved.devices)
    cols = snap.cols
    site, watts, intr = cols["site"], cols["watts"], snap.wls["interruptible"]
    # what the plan of this round leaves, per column and per site
    col_left = cols["cap_devices"].astype(np.float64).copy()
    site_all_left = snap.site_total_watts.astype(np.float64).copy()
    site_firm_left = np.minimum(snap.site_firm_watts, snap.site_total_watts).astype(np.float64)
    holders: dict[int, list[tuple[int, int, int]]] = {}  # site -> (workload, column, devices) of kept ones
    wof = resolved.cands.workload_of()
    for i in np.flatnonzero(resolved.devices > 0).tolist():
        w, c, d = int(wof[i]), int(resolved.cands.col[i]), int(resolved.devices[i])
        s = int(site[c])
        col_left[c] -= d
        site_all_left[s] -= d * watts[c]
        if not intr[w]:
            site_firm_left[s] -= d * watts[c]
        if w in kept_rows:
            holders.setdefault(s, []).append((w, c, d))
    pos = {int(w): i for i, w in enumerate(resolved.free.tolist())}
    chosen: set[int] = set()
    waiting = [int(w) for w in preemptors.tolist() if not placed[w] and int(w) in pos]
    waiting.sort(key=lambda w: (-int(snap.priority[w]), w))
    for w in waiting:
        i = pos[w]
        best: tuple[tuple[int, int, float], list[int], int, float] | None = None
        for c, n, cost in zip(resolved.kout["cand_col"][i].tolist(), resolved.kout["cand_devices"][i].tolist(),
                              resolved.kout["cand_cost"][i].tolist(), strict=True):
            if c < 0:
                continue
            s = int(site[c])
            need_dev, need_w = n - col_left[c], n * watts[c] - site_all_left[s]
            need_firm = 0.0 if intr[w] else n * watts[c] - site_firm_left[s]
            picked: list[int] = []
            order = sorted((h for h in holders.get(s, []) if snap.priority[h[0]] < snap.priority[w]
                            and h[0] not in chosen),
                           key=lambda h: (int(snap.priority[h[0]]), int(snap.value[h[0]]), h[0]))
            for h, _col, _devices in order:
                if need_dev <= 0 and need_w <= 0 and need_firm <= 0:
                    break
                if h in picked:
                    continue
                picked.append(h)
                for h2, c2, d2 in holders[s]:
                    if h2 != h:
                        continue
                    if c2 == c:
                        need_dev -= d2
                    need_w -= d2 * watts[c2]
                    if not intr[h2]:
                        need_firm -= d2 * watts[c2]
            if picked and need_dev <= 0 and need_w <= 0 and need_firm <= 0:
                key = (max(int(snap.priority[h]) for h in picked), len(picked), cost)
                if best is None or key < best[0]:
                    best = (key, picked, c, n)
        if best is None:
            continue
        _key, picked_best, c_best, n_best = best
        for h in picked_best:  # the victims' room goes to this preemptor: later ones see it taken
            chosen.add(h)
            for c2, _n, _u, _k, d2 in kept_rows[h]:
                s2 = int(site[c2])
                col_left[c2] += d2
                site_all_left[s2] += d2 * watts[c2]
                if not intr[h]:
                    site_firm_left[s2] += d2 * watts[c2]
        s_best = int(site[c_best])
        col_left[c_best] -= n_best
        site_all_left[s_best] -= n_best * watts[c_best]
        if not intr[w]:
            site_firm_left[s_best] -= n_best * watts[c_best]
    return sorted(chosen)


def floor_value(snap: Snapshot) -> float:
    """Stage 4: the kube-scheduler-order greedy's placed value over the whole mesh."""
    whole = run_greedy(snap, greedy_order(snap))
    return float(snap.value[whole.placed].sum())


def plan_value(snap: Snapshot, resolved: Resolved) -> float:
    return float(placed_value(snap, resolved.cands, resolved.devices))


__all__ = ["Resolved", "Scope", "candidate_sites", "victims", "floor_value", "plan_value", "resolve", "scope"]
