"""The warm path: re-solve what a change can affect, keep everything else as it is.

Called by :func:`placement.pipeline.plan` when ``previous`` carries a
:class:`~placement.basis.Basis` and the sites did not change. Stages, each a function
below:

1. **scope** (:func:`scope`): the changed and new workloads (spec differs from the
   basis) are re-solved; the sites whose capacity a changed or removed workload held
   in the previous plan are the *affected* sites (capacity may be freed there). An
   unplaced, unchanged workload is re-solved only when one of its candidate sites
   (kept in the basis) is affected: nothing else changed for it since it last found
   no room. A changed workload that takes room elsewhere only hurts the others, and
   one that needs room it does not find preempts (stage 3).
2. **round 1** (:func:`resolve` with CP-SAT off): the changed workloads, by the
   multi-start greedy, against the capacity the kept workloads leave
   (:func:`placement.snapshot.residual`): where they land and what they free.
3. **warm preemption** (:func:`victims`): a changed workload round 1 left unplaced
   may displace kept workloads of strictly lower priority on one of its candidate
   columns, chosen as kube-scheduler's preemption chooses them (lowest priorities,
   fewest victims); and **room freed** (:func:`helped`): the unplaced, unchanged
   workloads that now fit one of their candidate columns on an affected site.
4. **round 2** (:func:`resolve`): the changed workloads, the victims and the helped
   ones together through the solve sequence of :mod:`placement.solve`, hinted with
   round 1's plan (the victims where they were), so CP-SAT moves a victim only when
   that places more priority-weighted demand; its budgets shrink with the share of
   the mesh re-solved (:func:`warm_dtime_scale`).
5. **floor** (:func:`floor_run`): the kube-scheduler-order greedy over the whole
   mesh. A warm plan more than ``warm_floor_gap`` below it tries, cheapest first
   (``SolveStats.floor_repair`` names the one that worked): the floor's own
   preemptions (:func:`preempt_toward_floor`); the floor's greedy with every
   workload first where the warm plan has it (:func:`in_place_toward_floor`: it
   moves only what a workload earlier in the queue displaces); the repair
   (:func:`repair_scope`, :func:`toward_floor`): the workloads the two plans place
   differently are re-solved, hinted with both, so the result places at least what
   the floor does (unless that would re-solve more than ``warm_repair_max_share`` of
   the mesh: the cold path is then as cheap). Only when that fails too (it cannot,
   with unchanged sites; checked anyway) does the cold path run
   (``SolveStats.warm`` is then False and ``SolveStats.warm_fallback`` says why).

Deterministic: each stage is a function of the snapshot and the basis (no clock
except the solve sequence's wall-clock safety net).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from placement.basis import Basis, CandidateColumns, ChosenRow, workload_fingerprint
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
from placement.greedy import (
    GreedyRun,
    all_columns,
    devices_from_greedy,
    greedy_order,
    multi_start,
    run_greedy,
    value_order,
)
from placement.problem import SolverConfig
from placement.snapshot import Snapshot, residual
from placement.solve import FEWEST_MOVES_MAX_CANDIDATES, SolveResult, solve, solve_fewest_moves
from placement_ext import MeshKernels
from placement_ext.arrays import TopKArrays


@dataclass(frozen=True, slots=True)
class Scope:
    """What a change can affect (stage 1)."""

    same: NDArray[np.bool_]  # [W] spec as in the basis
    kept: NDArray[np.bool_]  # [W] same spec and placed in the previous plan
    waiting: NDArray[np.bool_]  # [W] same spec and unplaced in the previous plan
    changed: NDArray[np.intp]  # changed and new workloads
    affected_sites: NDArray[np.bool_]  # [sites] capacity held by a changed or removed workload before
    fingerprints: list[tuple[object, ...]]  # each workload's (placement.basis.workload_fingerprint), in order


@dataclass(slots=True)
class Resolved:
    """One re-solve of ``free`` against what the others leave (stage 2)."""

    free: NDArray[np.intp]  # the re-solved workloads (indices of the whole snapshot)
    sub: Snapshot
    kout: TopKArrays  # the kernel over ``free`` against the WHOLE capacity: reasons, candidate sites
    cands: Candidates  # the whole plan's candidates (kept rows + re-solved ones)
    devices: Devices  # the whole plan's devices
    result: SolveResult
    sub_candidates: int


def waiting_candidates(snap: Snapshot, rows: NDArray[np.intp], kout: TopKArrays) -> dict[str, CandidateColumns]:
    """For the basis: each of ``rows``' top-K candidate columns (kernel rows in the
    same order) and the fewest devices it could start with there (its whole need;
    one device when it may split)."""
    out: dict[str, CandidateColumns] = {}
    limit = snap.wls.site_limit
    for i, w in enumerate(rows.tolist()):
        cc = kout["cand_col"][i]
        ok = cc >= 0
        need = kout["cand_devices"][i][ok] if limit[w] <= 1 else np.ones(int(ok.sum()))
        out[snap.keys[w]] = (cc[ok].astype(np.int32), need.astype(np.float64))
    return out


def _subset(snap: Snapshot, idx: NDArray[np.intp]) -> Snapshot:
    none_c, none_s = np.zeros(snap.n_cols), np.zeros(snap.n_sites)
    return residual(snap, idx, none_c, none_s, none_s)


def scope(snap: Snapshot, basis: Basis) -> Scope:
    """Stage 1 (see the module doc)."""
    W = len(snap.keys)
    fingerprints = [workload_fingerprint(w) for w in snap.mesh.workloads]
    same = np.fromiter((basis.workload_fp.get(k) == fp for k, fp in zip(snap.keys, fingerprints, strict=True)),
                       dtype=bool, count=W)
    placed_before = np.fromiter((k in basis.chosen for k in snap.keys), dtype=bool, count=W)
    kept = same & placed_before
    changed = np.flatnonzero(~same)
    affected = np.zeros(snap.n_sites, dtype=bool)
    site = snap.cols.site
    # capacity freed: the sites of changed and removed workloads' previous placements
    now_same = {snap.keys[w] for w in np.flatnonzero(same).tolist()}
    for key, rows in basis.chosen.items():
        if key not in now_same:
            for c, *_ in rows:
                affected[int(site[c])] = True
    return Scope(same=same, kept=kept, waiting=same & ~placed_before, changed=changed, affected_sites=affected,
                 fingerprints=fingerprints)


def _usage(snap: Snapshot, rows_of_kept: dict[int, list[ChosenRow] | list[Row]]) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Devices per column, all watts and firm (non-interruptible) watts per site that
    the kept workloads take."""
    cols = [r[0] for rows in rows_of_kept.values() for r in rows]
    devices = [r[4] for rows in rows_of_kept.values() for r in rows]
    workloads = [w for w, rows in rows_of_kept.items() for _r in rows]
    return _usage_of(snap, np.asarray(cols, dtype=np.intp), np.asarray(devices, dtype=np.float64),
                     np.asarray(workloads, dtype=np.intp))


def _usage_of(snap: Snapshot, cols: NDArray[np.intp], devices: NDArray[np.float64],
              workloads: NDArray[np.intp]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_usage` of rows given as arrays (column, devices, workload per row): each
    sum is taken in row order, as a loop over them would."""
    site = snap.cols.site[cols]
    watts = devices * snap.cols.watts[cols]
    firm = ~snap.wls.interruptible[workloads].astype(bool)
    return (np.bincount(cols, weights=devices, minlength=snap.n_cols).astype(np.float64),
            np.bincount(site, weights=watts, minlength=snap.n_sites).astype(np.float64),
            np.bincount(site[firm], weights=watts[firm], minlength=snap.n_sites).astype(np.float64))


def resolve(
    snap: Snapshot,
    kept_rows: dict[int, list[ChosenRow] | list[Row]],
    free: NDArray[np.intp],
    priors: Sequence[dict[int, list[Row]]],
    upper_total: float | None,
    config: SolverConfig,
    deadline: float,
    fewest_moves: bool = False,
    greedy_starts: bool = True,
) -> Resolved | None:
    """Stage 2: re-solve ``free`` against the capacity ``kept_rows`` (workload index →
    its rows, global columns) leave. Each of ``priors`` (workload index → rows) is a
    placement of some free workloads known to fit together with the kept ones: a hint,
    the first one first, so the solve only moves them for more placed value. ``upper_total`` bounds the whole
    plan's phase-A value (None: no bound). ``fewest_moves`` (the repair toward the
    floor): ``priors`` are [a plan to reach, the plan to stay close to]; CP-SAT keeps
    the first's value and moves the fewest workloads off the second instead of
    maximising value (:func:`placement.solve.solve_fewest_moves`; over
    ``FEWEST_MOVES_MAX_CANDIDATES`` candidates without CP-SAT). Without
    ``greedy_starts`` the priors are the only hints (no multi-start greedy over the
    free workloads: its plans place more only by moving more of them). None when the
    kept rows do not fit (cannot happen with unchanged sites; checked anyway)."""
    W = len(snap.keys)
    col_used, site_all, site_ni = _usage(snap, kept_rows)
    sub = residual(snap, free, col_used, site_all, site_ni)
    if (sub.cols.cap_devices < 0).any() or (sub.site_total_watts < 0).any() or (sub.site_firm_watts < 0).any():
        return None
    # the full capacity (the reasons, the sites) over the free rows: a pair of arrays
    # no snapshot holds, bound for this one call
    kout_raw = MeshKernels(snap.cols, sub.wls).filter_score_topk(config.budgets.top_k, config.threads)
    kout_res = sub.kernels.filter_score_topk(config.budgets.top_k, config.threads)  # room left
    # the repair's start is its priors: no greedy runs (a second at 50k workloads)
    runs = multi_start(sub, kout_res) if greedy_starts and not fewest_moves else []
    pos = {int(w): i for i, w in enumerate(free.tolist())}
    prior_cols = []
    for one in priors:
        width = max((len(r) for r in one.values()), default=0)
        cols = np.full((free.size, width), -1, dtype=np.int32)
        for w, rows in one.items():
            for j, row in enumerate(rows):
                cols[pos[w], j] = row[0]
        prior_cols.append(cols)
    merged = {k: np.concatenate([kout_res[k], kout_raw[k]], axis=1) for k in ("cand_col", "cand_cost", "cand_devices")}
    sub_cands = build_candidates(sub, merged, np.concatenate([all_columns(runs, int(free.size)), *prior_cols], axis=1),
                                 config.budgets.max_cpsat_vars)
    hints = [devices_from_greedy(sub_cands, r) for r in runs]
    prior_devices = []
    for one in priors:
        hint = np.zeros(sub_cands.n, dtype=np.int64)
        for w, rows in one.items():
            r = sub_cands.rows(pos[w])
            for c, *_rest, d in rows:
                hint[r.start + int(np.flatnonzero(sub_cands.col[r.start:r.stop] == c)[0])] += d
        # (the repair's priors may be empty: none of its workloads placed by one plan)
        prior_devices.append(hint if (one or fewest_moves) and feasible_devices(sub, sub_cands, hint) else None)
    dtime_scale = warm_dtime_scale(config, free.size, W)
    fixed_value = float(snap.value[np.fromiter(kept_rows, dtype=np.intp, count=len(kept_rows))].sum())
    upper = None if upper_total is None else upper_total - fixed_value
    if fewest_moves:
        reach, stay = prior_devices if len(prior_devices) == 2 else (None, None)
        if reach is None or stay is None:
            return None  # not two feasible plans (cannot happen with unchanged sites)
        result = solve_fewest_moves(sub, sub_cands, reach, stay, config, deadline, dtime_scale,
                                    use_cpsat=sub_cands.n <= FEWEST_MOVES_MAX_CANDIDATES)
    else:
        hints = [h for h in prior_devices if h is not None] + hints  # the first prior first
        if not hints:
            return None  # only infeasible priors and no greedy start (cannot happen; checked anyway)
        result = solve(sub, sub_cands, hints, hints[0], upper, config, deadline, dtime_scale)
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


def room_left(snap: Snapshot, resolved: Resolved) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Devices per column, usable watts and firm watts per site that the whole plan of
    ``resolved`` leaves."""
    used = resolved.devices > 0
    col_used, site_all, site_ni = _usage_of(snap, resolved.cands.col[used].astype(np.intp),
                                            resolved.devices[used].astype(np.float64),
                                            resolved.cands.workload_of()[used].astype(np.intp))
    return (snap.cols.cap_devices - col_used, snap.site_total_watts - site_all,
            np.minimum(snap.site_firm_watts, snap.site_total_watts) - site_ni)


def helped(snap: Snapshot, basis: Basis, sc: Scope, resolved: Resolved) -> NDArray[np.intp]:
    """Unplaced, unchanged workloads not re-solved yet that the plan of ``resolved``
    leaves room for, on an affected site (capacity a change freed): nothing else
    changed for them since they last found no room. Taken as the kube-scheduler queue
    would (priority high to low, then input order), each on its first candidate column
    with room for its smallest share (devices, and the power it draws: firm power
    unless interruptible), that room then counted as taken: so no more are re-solved
    than the freed room could hold."""
    col_left, site_all_left, site_firm_left = room_left(snap, resolved)
    site, watts, intr = snap.cols.site, snap.cols.watts, snap.wls.interruptible
    done = np.zeros(len(snap.keys), dtype=bool)
    done[resolved.free] = True
    queue = np.flatnonzero(sc.waiting & ~done)
    queue = queue[np.lexsort((queue, -snap.priority[queue]))]
    # only those with a candidate column on an affected site can be helped: found for
    # all at once (thousands wait on a big mesh; a change affects a few sites)
    found = [(w, cand) for w in queue.tolist() if (cand := basis.waiting.get(snap.keys[w])) is not None]
    if not found:
        return np.zeros(0, dtype=np.intp)
    sizes = np.fromiter((cand[0].size for _w, cand in found), dtype=np.intp, count=len(found))
    on_affected = sc.affected_sites[site[np.concatenate([cand[0] for _w, cand in found])]]
    hits = np.bincount(np.repeat(np.arange(len(found)), sizes), weights=on_affected, minlength=len(found))
    out = []
    for i in np.flatnonzero(hits > 0).tolist():
        w, (c, need) = found[i]
        s = site[c]
        power = need * watts[c]
        ok = sc.affected_sites[s] & (col_left[c] >= need) & (site_all_left[s] >= power)
        if not intr[w]:
            ok &= site_firm_left[s] >= power
        hit = np.flatnonzero(ok)
        if hit.size == 0:
            continue
        k = int(hit[0])
        col_left[c[k]] -= need[k]
        site_all_left[s[k]] -= power[k]
        if not intr[w]:
            site_firm_left[s[k]] -= power[k]
        out.append(w)
    return np.asarray(sorted(out), dtype=np.intp)


def warm_dtime_scale(config: SolverConfig, resolved: int, workloads: int) -> float:
    """The share of CP-SAT's budgets a re-solve of ``resolved`` of ``workloads`` gets:
    ``warm_dtime_scale`` of a cold solve's, shrunk with the share of the mesh it
    re-solves (never under a tenth of it: a small model still gets room to prove)."""
    return config.budgets.warm_dtime_scale * max(0.1, min(1.0, resolved / max(1, workloads)))


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
    site, watts, intr = snap.cols.site, snap.cols.watts, snap.wls.interruptible
    col_left, site_all_left, site_firm_left = room_left(snap, resolved)
    holders: dict[int, list[tuple[int, int, int]]] = {}  # site -> (workload, column, devices) of kept ones
    wof = resolved.cands.workload_of()
    for i in np.flatnonzero(resolved.devices > 0).tolist():
        w, c, d = int(wof[i]), int(resolved.cands.col[i]), int(resolved.devices[i])
        if w in kept_rows:
            holders.setdefault(int(site[c]), []).append((w, c, d))
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


def floor_run(snap: Snapshot) -> GreedyRun:
    """Stage 5: the kube-scheduler-order greedy over the whole mesh (the floor)."""
    return run_greedy(snap, greedy_order(snap))


def floor_value(snap: Snapshot, run: GreedyRun) -> float:
    """The placed value of the floor's ``run``."""
    return float(snap.value[run.placed].sum())


@dataclass(frozen=True, slots=True)
class Repair:
    """What the repair toward the floor re-solves (stage 5, :func:`repair_scope`)."""

    free: NDArray[np.intp]  # the workloads re-solved
    kept: dict[int, list[Row]]  # the others, as the warm plan (and the floor) place them
    hints: list[dict[int, list[Row]]]  # the floor's placement of ``free``, then the warm plan's


def placed_rows(resolved: Resolved) -> dict[int, list[Row]]:
    """Each placed workload's rows in the plan of ``resolved`` (those with devices)."""
    placed = placed_mask(resolved.cands, resolved.devices)
    return {w: [r for r in rows_of(resolved.cands, w, resolved.devices) if r[4] > 0]
            for w in np.flatnonzero(placed).tolist()}


def run_rows(run: GreedyRun, w: int) -> list[Row]:
    """Workload ``w``'s rows in ``run`` (columns taken, with their devices)."""
    taken = run.cols[w] >= 0
    return [(int(c), 0, 0, 0, int(d)) for c, d in zip(run.cols[w][taken].tolist(), run.devices[w][taken].tolist(),
                                                      strict=True)]


def places_differently(n_workloads: int, a: dict[int, list[Row]], b: dict[int, list[Row]]) -> NDArray[np.bool_]:
    """[W] whether two plans (placed workload -> rows) give a workload other columns or
    devices, or place it in one and not the other."""
    def alike(w: int) -> bool:
        return sorted(r[::4] for r in a.get(w, [])) == sorted(r[::4] for r in b.get(w, []))

    return ~np.fromiter((alike(w) for w in range(n_workloads)), dtype=bool, count=n_workloads)


def preempt_toward_floor(
    snap: Snapshot, resolved: Resolved, floor: GreedyRun, upper_total: float | None, config: SolverConfig,
    deadline: float,
) -> Resolved | None:
    """Stage 5, first try, when the warm plan places less than the floor: the
    workloads the floor places and the warm plan does not (a victim of warm
    preemption the floor placed elsewhere, typically) preempt in turn, as the
    changed ones did (:func:`victims`); they, their victims and the workloads re-solved
    already are re-solved once more, hinted with the warm plan (victims where they
    are). Few workloads, so cheap; the caller checks the floor again and runs the
    full repair (:func:`repair_scope`) when this falls short. None when there is
    nothing to preempt for."""
    placed = placed_mask(resolved.cands, resolved.devices)
    seeds = np.flatnonzero(floor.placed & ~placed).astype(np.intp)
    if not seeds.size:
        return None
    rows = placed_rows(resolved)
    first = resolve(snap, rows, seeds, [], None, replace(config, use_cpsat=False), deadline)
    if first is None:
        return None
    displaced = victims(snap, first, rows, seeds)
    free = np.union1d(np.union1d(resolved.free, seeds), np.asarray(displaced, dtype=np.intp)).astype(np.intp)
    in_free = set(free.tolist())
    prior = {w: r for w in free.tolist() if (r := [x for x in rows_of(first.cands, w, first.devices) if x[4] > 0])}
    kept = {w: r for w, r in rows.items() if w not in in_free}
    return resolve(snap, kept, free, [prior], upper_total, config, deadline)


def repair_scope(snap: Snapshot, resolved: Resolved, floor: GreedyRun) -> Repair:
    """Stage 5, when the warm plan places less than the floor: a change can call for a
    cascade no local preemption finds (a higher-priority workload moving to another
    site to make room, as the greedy from scratch does). The workloads the two plans
    place alike stay as they are; every other one, and every one re-solved already
    (their reasons are new), is re-solved from the floor's placement of them (with the
    alike ones, the floor itself: a whole feasible plan), keeping as many as it can
    where the warm plan has them (:func:`toward_floor`), so the result places at
    least what the floor does and moves few. (Smaller scopes were measured and
    dropped: the floor-only workloads and the holders of their floor sites found no
    room in one hop on the 1,000-workload benchmark mesh, and the transitive closure
    of that, which would be enough, was 212 of the 218 differing workloads: the
    floor's cascades run through most sites.)"""
    warm_rows = placed_rows(resolved)
    floor_rows = {w: run_rows(floor, w) for w in np.flatnonzero(floor.placed).tolist()}
    differing = places_differently(len(snap.keys), warm_rows, floor_rows)
    differing[resolved.free] = True
    free = np.flatnonzero(differing).astype(np.intp)
    in_free = set(free.tolist())
    return Repair(free=free, kept={w: rows for w, rows in warm_rows.items() if w not in in_free},
                  hints=[{w: floor_rows[w] for w in in_free if w in floor_rows},
                         {w: warm_rows[w] for w in in_free if w in warm_rows}])


def toward_floor(
    snap: Snapshot, repair: Repair, upper_total: float | None, config: SolverConfig, deadline: float,
) -> Resolved | None:
    """Stage 5: the re-solve of :func:`repair_scope`'s workloads: as much as the
    floor places, moving the fewest of them off the warm plan."""
    return resolve(snap, repair.kept, repair.free, repair.hints, upper_total, config, deadline, fewest_moves=True)


def plan_value(snap: Snapshot, resolved: Resolved) -> float:
    return float(placed_value(snap, resolved.cands, resolved.devices))


def in_place_orders(snap: Snapshot) -> list[NDArray[np.int32]]:
    """The queues the in-place floor tries, in turn: the kube-scheduler one (priority,
    then input order), then by value (the order of the multi-start that packs the
    most value when a few big workloads are worth more than many small ones)."""
    return [greedy_order(snap), value_order(snap)]


def in_place_run(snap: Snapshot, resolved: Resolved, order: NDArray[np.int32]) -> GreedyRun:
    """Stage 5, second try: the floor's greedy in ``order``, each workload first where
    the warm plan of ``resolved`` has it (``greedy_place``'s preferred rows): the
    greedy's rules, moving only the workloads whose room a workload earlier in the
    queue takes."""
    W = len(snap.keys)
    width = snap.kernels.greedy_width()
    pref_cols = np.full((W, width), -1, dtype=np.int32)
    pref_devices = np.zeros((W, width))
    wof = resolved.cands.workload_of()
    filled = np.zeros(W, dtype=np.intp)
    for i in np.flatnonzero(resolved.devices > 0).tolist():
        w = int(wof[i])
        if filled[w] < width:  # (a feasible plan's row always fits: checked anyway)
            pref_cols[w, filled[w]] = int(resolved.cands.col[i])
            pref_devices[w, filled[w]] = float(resolved.devices[i])
        filled[w] += 1
    pref_cols[filled > width] = -1  # no partial row: such a workload is placed afresh
    cols, devices, placed = snap.kernels.greedy_place(order, snap.site_firm_watts, snap.site_total_watts,
                                                      pref_cols, pref_devices)
    return GreedyRun(cols=cols, devices=devices, placed=placed)


def in_place_toward_floor(
    snap: Snapshot, resolved: Resolved, floor: float, upper_total: float | None, config: SolverConfig,
    deadline: float,
) -> Resolved | None:
    """Stage 5, second try, when the floor's own preemptions fall short: the first run
    of :func:`in_place_orders` that places within ``warm_floor_gap`` of the floor
    (:func:`in_place_run`); the workloads it places differently from the warm plan,
    and those re-solved already, are re-solved hinted with it (so the result places
    at least as much), the others kept as they are. None when no order reaches it
    (the full repair runs). On ``python -m bench.burst --workloads 10000`` the two
    re-plans it kept warm moved 2,842 and 3,082 workloads, where the cold path they
    fell back to before moved 3,780 and 4,049 (docs/benchmarks.md)."""
    warm_rows = placed_rows(resolved)
    for order in in_place_orders(snap):
        run = in_place_run(snap, resolved, order)
        if floor_value(snap, run) < floor * (1.0 - config.budgets.warm_floor_gap):
            continue
        run_placed = {w: run_rows(run, w) for w in np.flatnonzero(run.placed).tolist()}
        differing = places_differently(len(snap.keys), warm_rows, run_placed)
        differing[resolved.free] = True
        free = np.flatnonzero(differing).astype(np.intp)
        in_free = set(free.tolist())
        prior = {w: run_placed[w] for w in in_free if w in run_placed}
        kept = {w: rows for w, rows in warm_rows.items() if w not in in_free}
        return resolve(snap, kept, free, [prior], upper_total, config, deadline, greedy_starts=False)
    return None


__all__ = ["Repair", "Resolved", "Scope", "floor_run", "floor_value", "helped", "in_place_orders", "in_place_run",
           "in_place_toward_floor", "placed_rows", "places_differently", "plan_value", "preempt_toward_floor", "run_rows",
           "resolve", "room_left", "scope",
           "repair_scope", "toward_floor", "victims", "waiting_candidates", "warm_dtime_scale"]

