"""NumPy and pure-Python twins of the Cython kernels in ``_kernels``.

Not used in production, and shipped anyway: the tests (tests/placement_ext) prove, on
random inputs and synthetic meshes, that the twins give the same masks, rejection
counts, candidates, scores and greedy placements as the Cython kernels, and the
benchmarks (bench/kernel.py) time them; both run against an installed wheel too, and
the twins are the readable statement of what each kernel computes (a reader checking
a filter reads :func:`pair_eval_python`, not C). Same arrays in (``placement_ext.ColumnArrays`` /
``placement_ext.WorkloadArrays``, or :func:`to_python`'s lists under the same names),
same results out (see ``_kernels``).

- :func:`filter_score_topk_numpy` (vectorised) and :func:`filter_score_topk_python`
  (plain loops over Python lists, see :func:`to_python`): ``filter_score_topk``.
- :func:`pair_eval_python`: ``_pair_eval`` of one pair (``evaluate_pairs``).
- :func:`greedy_place_python`: ``greedy_place``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray

# the kernel's own constants and filters, not copies of them
from placement_ext._kernels import ENERGY_SCALE, LATENCY_SCALE, MAX_LATENCY_TIER, STABILITY_PENALTY, Filter
from placement_ext.arrays import ColumnArrays, WorkloadArrays

# The same fields as nested Python lists (see :func:`to_python`), or the arrays.
ColumnLists = ColumnArrays | SimpleNamespace
WorkloadLists = WorkloadArrays | SimpleNamespace
Out = dict[str, NDArray[Any]]

N_FILTERS = int(Filter.FEASIBLE)  # the refusing filters; a feasible pair's code


def pair_codes_numpy(
    cols: ColumnArrays, wls: WorkloadArrays, w0: int, w1: int
) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Filter code, devices, latency and cost for workloads w0..w1 x all columns."""
    C = len(cols.site)
    nw = w1 - w0
    sl = slice(w0, w1)
    is_fleet = cols.is_fleet.astype(bool)[None, :]
    cord = cols.cordoned.astype(bool)[None, :]
    f_cord = np.broadcast_to(cord, (nw, C))
    f_train = is_fleet & wls.is_training[sl, None].astype(bool)
    f_fleet = is_fleet & ~wls.allow_fleets[sl, None].astype(bool)
    f_country = ~wls.country_ok[sl][:, cols.country].astype(bool)
    # latency over users, accumulated in the kernel's order
    up = wls.user_ptr
    cnt = up[w0 + 1 : w1 + 1] - up[w0:w1]
    lmax = np.zeros((nw, C))
    lsum = np.zeros((nw, C))
    wsum = np.zeros((nw, 1))
    lat_m = wls.latency
    for j in range(int(cnt.max()) if nw else 0):
        has = (cnt > j)[:, None]
        idx = np.where(cnt > j, up[w0:w1] + j, 0)
        L = lat_m[wls.user_region[idx]] if len(wls.user_region) else np.zeros((nw, C))
        wt = np.where(cnt > j, wls.user_weight[idx] if len(wls.user_weight) else 0.0, 0.0)[:, None]
        lmax = np.where(has & (lmax < L), L, lmax)
        with np.errstate(invalid="ignore"):
            lsum = np.where(has, lsum + wt * L, lsum)
        wsum = np.where(has, wsum + wt, wsum)
    f_lat = lmax > wls.max_latency_ms[sl, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = np.where(wsum > 0.0, lsum / np.where(wsum > 0, wsum, 1.0), 0.0)
    f_model = ~wls.model_ok[sl][:, cols.model].astype(bool)
    f_mem = cols.memory_gib[None, :] < wls.min_memory_gib[sl, None]
    accel = wls.accel[sl, None]
    tps = cols.tps_milli[None, :]
    dev = accel > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        n_tok = np.ceil(wls.tokens_milli[sl, None] / np.where(tps > 0, tps, 1.0))
    n = np.where(dev, accel, n_tok)
    no_tps = ~dev & (tps <= 0.0)
    need_min = np.where(wls.site_limit[sl, None] > 1, 1.0, n)
    f_dev = no_tps | (need_min > cols.cap_devices[None, :])
    f_offline = np.broadcast_to(
        (cols.is_fleet.astype(bool) & (cols.cap_devices <= 0.0))[None, :], (nw, C)
    )
    avail = np.where(
        wls.interruptible[sl, None].astype(bool),
        cols.total_watts[None, :],
        np.minimum(cols.firm_watts, cols.total_watts)[None, :],
    )
    f_pow = need_min * cols.watts[None, :] > avail
    code = np.full((nw, C), N_FILTERS, dtype=np.int32)
    for k, mask in reversed(
        list(enumerate((f_cord, f_train, f_fleet, f_country, f_lat, f_model, f_mem, f_offline, f_dev, f_pow)))
    ):
        code = np.where(mask, k, code)
    lq = np.minimum(np.floor(lat + 0.5), MAX_LATENCY_TIER)
    # stability: penalty unless the column's site is among the workload's current sites
    cp = wls.cur_ptr
    ccnt = cp[w0 + 1 : w1 + 1] - cp[w0:w1]
    on_current = np.zeros((nw, C), dtype=bool)
    for j in range(int(ccnt.max()) if nw else 0):
        idx = np.where(ccnt > j, cp[w0:w1] + j, 0)
        s = np.where(ccnt > j, wls.cur_site[idx] if len(wls.cur_site) else -1, -2)
        on_current |= cols.site[None, :] == s[:, None]
    st = np.where((ccnt > 0)[:, None] & ~on_current, STABILITY_PENALTY, 0.0)
    e = np.where(dev, cols.e_dev[None, :], cols.e_tok[None, :])
    with np.errstate(invalid="ignore"):
        cost = n * (e * ENERGY_SCALE + lq * LATENCY_SCALE + st)
    return code, n, lat, cost


def filter_score_topk_numpy(cols: ColumnArrays, wls: WorkloadArrays, top_k: int, chunk: int = 256) -> Out:
    """Vectorised twin of the Cython kernel (workloads in chunks)."""
    W = len(wls.accel)
    C = len(cols.site)
    sp = cols.site_ptr
    nonempty = np.flatnonzero(sp[1:] > sp[:-1])
    out = {
        "cand_col": np.full((W, top_k), -1, dtype=np.int32),
        "cand_cost": np.full((W, top_k), np.inf),
        "cand_devices": np.zeros((W, top_k)),
        "cand_latency_ms": np.zeros((W, top_k)),
        "rejections": np.zeros((W, N_FILTERS), dtype=np.int32),
        "feasible_sites": np.zeros(W, dtype=np.int32),
    }
    if W == 0 or C == 0:
        return out
    colidx = np.arange(C)
    for w0 in range(0, W, chunk):
        w1 = min(W, w0 + chunk)
        code, n, lat, cost = pair_codes_numpy(cols, wls, w0, w1)
        site_code = np.maximum.reduceat(code, sp[nonempty], axis=1)
        for k in range(N_FILTERS):
            out["rejections"][w0:w1, k] = (site_code == k).sum(axis=1)
        out["feasible_sites"][w0:w1] = (site_code == N_FILTERS).sum(axis=1)
        feas = code == N_FILTERS
        masked = np.where(feas, cost, np.inf)
        order = np.lexsort((np.broadcast_to(colidx, masked.shape), masked), axis=-1)[:, :top_k]
        kk = order.shape[1]
        rows = np.arange(w1 - w0)[:, None]
        ok = feas[rows, order]
        out["cand_col"][w0:w1, :kk] = np.where(ok, order, -1)
        out["cand_cost"][w0:w1, :kk] = np.where(ok, masked[rows, order], np.inf)
        out["cand_devices"][w0:w1, :kk] = np.where(ok, n[rows, order], 0.0)
        out["cand_latency_ms"][w0:w1, :kk] = np.where(ok, lat[rows, order], 0.0)
    return out


PairVerdict = tuple[Filter, float, float, float, float, float]


def _refused(f: Filter, need: float = 0.0, have: float = 0.0) -> PairVerdict:
    return f, 0.0, 0.0, 0.0, need, have


def pair_eval_python(cols: ColumnLists, wls: WorkloadLists, wi: int, ci: int) -> PairVerdict:
    """``_pair_eval`` of one pair: the refusing ``Filter`` (``Filter.FEASIBLE`` when
    none), devices, latency (ms), cost (all 0.0 unless feasible), and the refusing
    filter's figures ``need`` / ``have`` (see ``placement_ext.pairs.PairVerdicts``)."""
    if cols.cordoned[ci]:
        return _refused(Filter.CORDONED)
    if cols.is_fleet[ci]:
        if wls.is_training[wi]:
            return _refused(Filter.TRAINING_NEEDS_FACTORY)
        if not wls.allow_fleets[wi]:
            return _refused(Filter.FLEETS_NOT_ALLOWED)
    if not wls.country_ok[wi][cols.country[ci]]:
        return _refused(Filter.COUNTRY_NOT_ALLOWED, 0.0, float(cols.country[ci]))
    lmax = lsum = wsum = 0.0
    for u in range(wls.user_ptr[wi], wls.user_ptr[wi + 1]):
        wt = wls.user_weight[u]
        L = wls.latency[wls.user_region[u]][ci]
        lmax = max(lmax, L)
        lsum = lsum + wt * L
        wsum = wsum + wt
    if lmax > wls.max_latency_ms[wi]:
        return _refused(Filter.LATENCY, lmax, wls.max_latency_ms[wi])
    lat = lsum / wsum if wsum > 0.0 else 0.0
    if not wls.model_ok[wi][cols.model[ci]]:
        return _refused(Filter.ACCELERATOR_MODEL, 0.0, float(cols.model[ci]))
    if cols.memory_gib[ci] < wls.min_memory_gib[wi]:
        return _refused(Filter.MEMORY, wls.min_memory_gib[wi], cols.memory_gib[ci])
    if cols.is_fleet[ci] and cols.cap_devices[ci] <= 0.0:
        return _refused(Filter.OFFLINE_NOW)
    if wls.accel[wi] > 0.0:
        n = wls.accel[wi]
        e = cols.e_dev[ci]
    else:
        if cols.tps_milli[ci] <= 0.0:
            return _refused(Filter.INSUFFICIENT_DEVICES, math.inf, cols.cap_devices[ci])
        n = float(math.ceil(wls.tokens_milli[wi] / cols.tps_milli[ci]))
        e = cols.e_tok[ci]
    need_min = 1.0 if wls.site_limit[wi] > 1 else n
    if need_min > cols.cap_devices[ci]:
        return _refused(Filter.INSUFFICIENT_DEVICES, need_min, cols.cap_devices[ci])
    avail = cols.total_watts[ci] if wls.interruptible[wi] else min(cols.firm_watts[ci], cols.total_watts[ci])
    if need_min * cols.watts[ci] > avail:
        return _refused(Filter.INSUFFICIENT_POWER, need_min * cols.watts[ci], avail)
    lq = min(math.floor(lat + 0.5), MAX_LATENCY_TIER) if math.isfinite(lat) else MAX_LATENCY_TIER
    st = 0.0
    cp = wls.cur_ptr
    if cp[wi + 1] > cp[wi]:
        st = STABILITY_PENALTY
        for k in range(cp[wi], cp[wi + 1]):
            if wls.cur_site[k] == cols.site[ci]:
                st = 0.0
                break
    return Filter.FEASIBLE, n, lat, n * (e * ENERGY_SCALE + lq * LATENCY_SCALE + st), 0.0, 0.0


def to_python(cols: ColumnArrays, wls: WorkloadArrays) -> tuple[SimpleNamespace, SimpleNamespace]:
    """Arrays -> nested Python lists under the same field names (so the pure-Python twin
    runs on Python objects)."""
    return (
        SimpleNamespace(**{f.name: getattr(cols, f.name).tolist() for f in fields(cols)}),
        SimpleNamespace(**{f.name: getattr(wls, f.name).tolist() for f in fields(wls)}),
    )


def filter_score_topk_python(
    cols: ColumnLists, wls: WorkloadLists, top_k: int, workloads: Sequence[int] | None = None
) -> dict[str, Any]:
    """Pure-Python twin (plain loops over Python lists; see :func:`to_python`).

    ``workloads`` optionally restricts the rows computed (for benchmarking a sample);
    rows not computed are left empty. Same keys as the kernel's dict, nested lists.
    """
    W = len(wls.accel)
    sp = cols.site_ptr
    n_sites = len(sp) - 1
    rows = range(W) if workloads is None else workloads
    cand_col = [[-1] * top_k for _ in range(W)]
    cand_cost = [[math.inf] * top_k for _ in range(W)]
    cand_devices = [[0.0] * top_k for _ in range(W)]
    cand_latency = [[0.0] * top_k for _ in range(W)]
    rejections = [[0] * N_FILTERS for _ in range(W)]
    feasible_sites = [0] * W
    for wi in rows:
        cands: list[tuple[float, int, float, float]] = []
        rej = rejections[wi]
        for s in range(n_sites):
            site_code = -1
            for ci in range(sp[s], sp[s + 1]):
                code, n, lat, cost, _need, _have = pair_eval_python(cols, wls, wi, ci)
                site_code = max(site_code, code)
                if code == N_FILTERS:
                    cands.append((cost, ci, n, lat))
            if site_code == N_FILTERS:
                feasible_sites[wi] += 1
            elif site_code >= 0:
                rej[site_code] += 1
        cands.sort(key=lambda t: (t[0], t[1]))
        for k, (cost, ci, n, lat) in enumerate(cands[:top_k]):
            cand_col[wi][k] = ci
            cand_cost[wi][k] = cost
            cand_devices[wi][k] = n
            cand_latency[wi][k] = lat
    return {
        "cand_col": cand_col,
        "cand_cost": cand_cost,
        "cand_devices": cand_devices,
        "cand_latency_ms": cand_latency,
        "rejections": rejections,
        "feasible_sites": feasible_sites,
    }


# --------------------------------------------------------------------------- greedy


def greedy_width(cols: ColumnLists, wls: WorkloadLists) -> int:
    """Twin of ``_kernels.greedy_width``: 1 when no workload may split, else the
    column counts of the ``max(site_limit)`` largest sites, added."""
    sp = list(cols.site_ptr)
    max_limit = max((int(x) for x in wls.site_limit), default=1)
    if max_limit <= 1:
        return 1
    sizes = sorted((sp[s + 1] - sp[s] for s in range(len(sp) - 1)), reverse=True)
    return max(1, int(sum(sizes[:max_limit])))


def greedy_place_python(
    cols: ColumnArrays, wls: WorkloadArrays, order: Sequence[int], site_firm_watts: Sequence[float],
    site_total_watts: Sequence[float], preferred_cols: NDArray[np.int32] | None = None,
    preferred_devices: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.bool_]]:
    """Pure-Python twin of ``_kernels.greedy_place`` (same arrays in, same out).

    Workloads one at a time in ``order``: where ``preferred_cols`` / ``preferred_devices``
    put it (a row of columns, -1 padded, and their devices), when every one of those
    pairs passes the filters and still has room; else whole on the cheapest feasible
    column where it fits (ties: lowest column index); else, if ``site_limit`` > 1, over
    the cheapest columns with room, on at most ``site_limit`` distinct sites, then
    (token demand) surplus devices dropped, the most expensive per device first;
    all or nothing.
    """
    c, w = to_python(cols, wls)
    W = len(w.accel)
    C = len(c.site)
    width = greedy_width(c, w)
    out_col = np.full((W, width), -1, dtype=np.int32)
    out_n = np.zeros((W, width), dtype=np.float64)
    placed = np.zeros(W, dtype=bool)
    cap_left = [float(x) for x in c.cap_devices]
    firm = [float(x) for x in site_firm_watts]
    total = [float(x) for x in site_total_watts]
    tot_used = [0.0] * len(total)
    ni_used = [0.0] * len(total)
    site, watts, tps = c.site, c.watts, c.tps_milli

    def fit(wi: int, ci: int) -> float:
        s = site[ci]
        room = total[s] - tot_used[s]
        if not w.interruptible[wi] and firm[s] - ni_used[s] < room:
            room = firm[s] - ni_used[s]
        room = max(room, 0.0)
        k = float(math.floor(room / watts[ci])) if watts[ci] > 0.0 else cap_left[ci]
        return max(min(k, cap_left[ci]), 0.0)

    def take(wi: int, ci: int, k: float) -> None:
        s = site[ci]
        cap_left[ci] -= k
        tot_used[s] += k * watts[ci]
        if not w.interruptible[wi]:
            ni_used[s] += k * watts[ci]

    for wi in order:
        if preferred_cols is not None and preferred_devices is not None:
            prefer = [(int(ci), float(k)) for ci, k in zip(preferred_cols[wi], preferred_devices[wi], strict=True)]
            prefer = prefer[:next((j for j, (ci, _k) in enumerate(prefer) if ci < 0), len(prefer))]
            taken: list[tuple[int, float]] = []
            for ci, k in prefer:
                if pair_eval_python(c, w, wi, ci)[0] != N_FILTERS or fit(wi, ci) < k:
                    break
                take(wi, ci, k)
                taken.append((ci, k))
            if prefer and len(taken) == len(prefer):
                for slot, (ci, k) in enumerate(taken):
                    out_col[wi, slot] = ci
                    out_n[wi, slot] = k
                placed[wi] = True
                continue
            for ci, k in taken:
                take(wi, ci, -k)
        evals = [pair_eval_python(c, w, wi, ci) for ci in range(C)]
        ok = [ci for ci in range(C) if evals[ci][0] == N_FILTERS]
        whole = [ci for ci in ok if fit(wi, ci) >= evals[ci][1]]
        if whole:
            best = min(whole, key=lambda ci: (evals[ci][3], ci))
            take(wi, best, evals[best][1])
            out_col[wi, 0] = best
            out_n[wi, 0] = evals[best][1]
            placed[wi] = True
            continue
        limit = w.site_limit[wi]
        if limit <= 1:
            continue
        tokens = w.accel[wi] <= 0.0
        rem = w.tokens_milli[wi] if tokens else w.accel[wi]
        chosen: list[list[Any]] = []  # [column, devices]
        sites: set[int] = set()
        while len(chosen) < width and rem > 0.0:
            room = [ci for ci in ok if ci not in {x for x, _ in chosen}
                    and (len(sites) < limit or site[ci] in sites) and fit(wi, ci) >= 1.0]
            if not room:
                break
            best = min(room, key=lambda ci: (evals[ci][3], ci))
            k = float(math.ceil(rem / tps[best])) if tokens else rem
            k = min(k, fit(wi, best))
            take(wi, best, k)
            sites.add(site[best])
            chosen.append([best, k])
            rem -= k * tps[best] if tokens else k
        if rem > 0.0:
            for ci, k in chosen:
                take(wi, ci, -k)
            continue
        if tokens and rem < 0.0:
            surplus = -rem

            per_device = {ci: evals[ci][3] / evals[ci][1] if evals[ci][1] > 0.0 else 0.0 for ci, _ in chosen}
            for entry in sorted(chosen, key=lambda e: (per_device[e[0]], e[0]), reverse=True):
                ci = entry[0]
                drop = min(float(math.floor(surplus / tps[ci])), entry[1])
                if drop > 0.0:
                    take(wi, ci, -drop)
                    entry[1] -= drop
                    surplus -= drop * tps[ci]
            chosen = [e for e in chosen if e[1] > 0.0]
        for slot, (ci, k) in enumerate(chosen):
            out_col[wi, slot] = ci
            out_n[wi, slot] = k
        placed[wi] = True
    return out_col, out_n, placed
