"""Assign: turn a plan (devices per candidate) into decisions, site usage and reasons.

Called by :mod:`placement.pipeline` (cold and warm paths) once the solve sequence
has fixed the devices. Reports assignments in real units (facility MW with PUE,
tokens/s), each with the WORST latency from the workload's user regions of weight
> 0 to the site (what the latency filter checks) and the demand-weighted mean, both
read from the snapshot's latency matrix; per-site usage (interruptible load on
flexible power first); and, for every unplaced workload, the reason of
:mod:`placement.explain`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from placement import explain
from placement.candidates import Candidates, Devices
from placement.decisions import (
    KIND_FACTORY,
    PHASE_PLACED,
    PHASE_UNSCHEDULABLE,
    Assignment,
    Plan,
    PoolUsage,
    SiteUsage,
    WorkloadDecision,
)
from placement.snapshot import Snapshot
from placement_ext.arrays import TopKArrays


def user_latency_ms(snap: Snapshot, w: int, col: int) -> tuple[float | None, float | None]:
    """(worst, demand-weighted mean) latency in ms from workload ``w``'s user regions
    of weight > 0 to column ``col``; None without users (or when unreachable)."""
    wls = snap.wls
    lo, hi = int(wls.user_ptr[w]), int(wls.user_ptr[w + 1])
    if lo == hi:
        return None, None
    ms = wls.latency[wls.user_region[lo:hi], col]
    weight = wls.user_weight[lo:hi]
    worst = float(ms.max())
    mean = float((ms * weight).sum() / weight.sum())
    if not math.isfinite(worst):
        return None, None
    return worst, mean


_CODES_PAIRS_PER_CALL = 2_000_000


def _codes(snap: Snapshot, unplaced: list[int]) -> NDArray[np.int32]:
    """Filter code of every (unplaced workload, column) pair, [len(unplaced), C]."""
    C = snap.n_cols
    if not unplaced or C == 0:
        return np.zeros((len(unplaced), C), dtype=np.int32)
    out = np.empty((len(unplaced), C), dtype=np.int32)
    # in slices: the kernel's four outputs per pair would otherwise take 36 bytes for
    # every (unplaced workload, column) pair at once (2.6 GB at 50,000 x 5,000)
    step = max(1, _CODES_PAIRS_PER_CALL // C)
    for lo in range(0, len(unplaced), step):
        chunk = np.asarray(unplaced[lo:lo + step], dtype=np.int32)
        w = np.repeat(chunk, C)
        c = np.tile(np.arange(C, dtype=np.int32), chunk.size)
        out[lo:lo + chunk.size] = snap.kernels.evaluate_pairs(w, c).filter.reshape(chunk.size, C)
    return out


def assign(snap: Snapshot, reasons_in: TopKArrays, cands: Candidates, devices: Devices,
           carried: Mapping[int, WorkloadDecision] | None = None,
           kept: Mapping[int, WorkloadDecision] | None = None) -> Plan:
    """Decisions, site usage and reasons for ``devices``. ``reasons_in`` holds the
    kernel's per-workload ``rejections`` [W, filters] and ``feasible_sites`` [W].
    ``carried``: unplaced workloads (by index) whose reason is the given previous
    decision's, not worked out again (the warm path, for workloads it did not
    re-solve). ``kept``: placed workloads (by index) whose previous decision stands
    as it is (the warm path: same spec, same sites, same rows): only their use of the
    sites is counted again, so a warm re-solve's cost follows what it re-solved."""
    cols = snap.cols
    W = len(snap.keys)
    col_used = np.zeros(snap.n_cols, dtype=np.int64)
    site_real_w = np.zeros(snap.n_sites)  # real facility watts, for the report
    site_real_ni_w = np.zeros(snap.n_sites)
    site_w = np.zeros(snap.n_sites)  # the engine's integer watts, for the reasons
    site_ni_w = np.zeros(snap.n_sites)
    site_tps = np.zeros(snap.n_sites)
    site_workloads: list[set[int]] = [set() for _ in range(snap.n_sites)]
    decisions: dict[str, WorkloadDecision] = {}
    rejections: dict[int, dict[str, int]] = {}
    feasible: dict[int, int] = {}
    unplaced: list[int] = []
    kept = kept or {}
    watts, site_of, intr = cols.watts, cols.site, snap.wls.interruptible
    for w in range(W):
        old = kept.get(w)
        if old is not None:
            decisions[old.key] = old
            for i in cands.rows(w):
                n = int(devices[i])
                c = int(cands.col[i])
                s = int(site_of[c])
                real_w = n * float(snap.col_watts_real[c])
                site_real_w[s] += real_w
                site_w[s] += n * float(watts[c])
                if not intr[w]:
                    site_real_ni_w[s] += real_w
                    site_ni_w[s] += n * float(watts[c])
                col_used[c] += n
                site_tps[s] += n * float(snap.col_tps[c])
                site_workloads[s].add(w)
            continue
        before = carried.get(w) if carried else None
        if before is not None:  # not re-solved: its counts are the previous decision's, as they were
            rejections[w], feasible[w] = dict(before.rejections), before.feasible_sites
        else:
            rejections[w] = explain.rejection_dict(reasons_in["rejections"][w])
            feasible[w] = int(reasons_in["feasible_sites"][w])
        dec = WorkloadDecision(
            key=snap.keys[w], phase=PHASE_UNSCHEDULABLE, rejections=rejections[w], feasible_sites=feasible[w]
        )
        interruptible = bool(snap.wls.interruptible[w])
        for i in cands.rows(w):
            n = int(devices[i])
            if n <= 0:
                continue
            c = int(cands.col[i])
            s = int(cols.site[c])
            real_w = n * float(snap.col_watts_real[c])
            site_real_w[s] += real_w
            site_w[s] += n * float(cols.watts[c])
            if not interruptible:
                site_real_ni_w[s] += real_w
                site_ni_w[s] += n * float(cols.watts[c])
            col_used[c] += n
            site_tps[s] += n * float(snap.col_tps[c])
            site_workloads[s].add(w)
            worst, mean = user_latency_ms(snap, w, c)
            dec.assignments.append(
                Assignment(
                    site=snap.col_site_name[c],
                    kind=snap.col_kind[c],
                    accelerator_model=snap.col_model_name[c],
                    devices=n,
                    tokens_per_second=n * float(snap.col_tps[c]),
                    power_mw=real_w / 1e6,
                    latency_ms=worst,
                    mean_latency_ms=mean,
                )
            )
        if dec.assignments:
            dec.phase = PHASE_PLACED
            dec.message = dec.status_message = "placed on " + ", ".join(
                f"{a.site} ({a.devices:,} x {a.accelerator_model})" for a in dec.assignments
            )
        else:
            unplaced.append(w)
        decisions[dec.key] = dec
    usage = explain.Usage(col_used, site_w, site_ni_w, site_workloads)
    carried = dict(carried or {})
    if carried:
        index = {k: i for i, k in enumerate(snap.keys)}
        for w in unplaced:
            old = carried.get(w)
            if old is None:
                continue
            # a reason naming a holder that moved or changed priority is worked out again
            holders_hold = all(
                k in index and decisions[k].phase == PHASE_PLACED and snap.priority[index[k]] > snap.priority[w]
                for k in old.displaced_by
            )
            if not holders_hold:
                del carried[w]
                continue
            dec = decisions[snap.keys[w]]
            dec.message, dec.status_message, dec.displaced_by = old.message, old.status_message, old.displaced_by
    unplaced = [w for w in unplaced if w not in carried]
    for w, reason in explain.reasons(snap, unplaced, rejections, feasible, _codes(snap, unplaced), usage).items():
        dec = decisions[snap.keys[w]]
        dec.message = reason.message
        dec.status_message = reason.summary or reason.message
        dec.displaced_by = reason.displaced_by
    return Plan(workloads=decisions, sites=_site_usage(snap, col_used, site_real_w, site_real_ni_w, site_tps,
                                                        {s: len(ws) for s, ws in enumerate(site_workloads)}))


def _site_usage(
    snap: Snapshot,
    col_used: NDArray[np.int64],
    site_real_w: NDArray[np.float64],
    site_real_ni_w: NDArray[np.float64],
    site_tps: NDArray[np.float64],
    workload_count: Mapping[int, int],
) -> dict[str, SiteUsage]:
    cols = snap.cols
    sp = cols.site_ptr
    usage: dict[str, SiteUsage] = {}
    for s, name in enumerate(snap.site_names):
        factory = snap.site_kind[s] == KIND_FACTORY
        firm_av = min(snap.site_firm_watts[s], snap.site_total_watts[s]) / 1e6
        flex_av = max(0.0, snap.site_total_watts[s] - snap.site_firm_watts[s]) / 1e6
        tot = site_real_w[s] / 1e6
        ni = site_real_ni_w[s] / 1e6
        # non-interruptible load is on firm power (the model keeps it within firm);
        # interruptible load takes flexible power first, firm only for the rest
        flex_cap = flex_av if factory else 0.0
        firm_used = ni + max(0.0, (tot - ni) - flex_cap)
        pools = [
            PoolUsage(snap.col_model_name[c], int(col_used[c]), int(cols.cap_devices[c]))
            for c in range(int(sp[s]), int(sp[s + 1]))
        ]
        usage[name] = SiteUsage(
            name=name,
            kind=snap.site_kind[s],
            firm_mw_used=float(firm_used),
            firm_mw_available=float(firm_av if factory else snap.site_total_watts[s] / 1e6),
            flexible_mw_used=float(max(0.0, tot - firm_used)),
            flexible_mw_available=float(flex_av if factory else 0.0),
            pools=pools,
            tokens_per_second=float(site_tps[s]),
            tokens_per_joule=float(site_tps[s] / site_real_w[s]) if site_real_w[s] > 0 else 0.0,
            workload_count=int(workload_count[s]),
        )
    return usage
