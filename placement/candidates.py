"""Candidates: the (workload, site column) pairs the solver may use, and plan arithmetic.

Called by :mod:`placement.pipeline` after the scoring kernel has kept the top-K
feasible columns per workload: :func:`build_candidates` adds the columns the greedy
placer chose (so that every greedy plan is a valid hint) and gives each pair its
need, upper bound and integer cost per device. A plan is then a vector of devices
per candidate; :func:`placed_value`, :func:`plan_cost` and :func:`feasible_devices`
evaluate one. Used by :mod:`placement.greedy`, :mod:`placement.cpsat`,
:mod:`placement.trim`, :mod:`placement.solve` and :mod:`placement.assign`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.snapshot import Snapshot
from placement_ext.arrays import TopKArrays

Devices = NDArray[np.int64]  # devices per candidate: a plan


@dataclass(slots=True)
class Candidates:
    """Flat candidate list, grouped by workload (``ptr`` is CSR over workloads)."""

    ptr: NDArray[np.int64]  # [W+1]
    col: NDArray[np.int64]  # [N] column index
    need: NDArray[np.int64]  # [N] devices to serve the whole demand on this column
    ub: NDArray[np.int64]  # [N] most devices this column could give (splittable)
    cost_per_device: NDArray[np.int64]  # [N] energy >> latency >> stability tiers

    @property
    def n(self) -> int:
        return int(self.col.shape[0])

    @property
    def n_workloads(self) -> int:
        return int(self.ptr.shape[0]) - 1

    def rows(self, w: int) -> range:
        """Candidate indices of workload ``w``."""
        return range(int(self.ptr[w]), int(self.ptr[w + 1]))

    def workload_of(self) -> NDArray[np.int64]:
        """Workload index of every candidate."""
        return np.repeat(np.arange(self.n_workloads, dtype=np.int64), np.diff(self.ptr))

    @classmethod
    def from_lists(
        cls,
        ptr: Sequence[int],
        col: Sequence[int],
        need: Sequence[int],
        ub: Sequence[int],
        cost_per_device: Sequence[int],
    ) -> Candidates:
        """Candidates from Python lists built row by row (the arrays get their dtypes)."""
        return cls(
            ptr=np.asarray(ptr, dtype=np.int64),
            col=np.asarray(col, dtype=np.int64),
            need=np.asarray(need, dtype=np.int64),
            ub=np.asarray(ub, dtype=np.int64),
            cost_per_device=np.asarray(cost_per_device, dtype=np.int64),
        )


# One candidate row with its devices: (column, need, ub, cost per device, devices)
Row = tuple[int, int, int, int, int]


def from_rows(rows: Sequence[Sequence[Row]]) -> tuple[Candidates, Devices]:
    """Candidates and devices from per-workload rows (workload w's rows are ``rows[w]``):
    how the warm path and the partitioned solve stitch plans of parts together."""
    ptr = [0]
    col: list[int] = []
    need: list[int] = []
    ub: list[int] = []
    cpd: list[int] = []
    dev: list[int] = []
    for rs in rows:
        for c, n, u, k, d in rs:
            col.append(c)
            need.append(n)
            ub.append(u)
            cpd.append(k)
            dev.append(d)
        ptr.append(len(col))
    return Candidates.from_lists(ptr, col, need, ub, cpd), np.asarray(dev, dtype=np.int64)


def rows_of(cands: Candidates, w: int, devices: Devices, col_map: NDArray[np.intp] | None = None) -> list[Row]:
    """Workload ``w``'s rows of ``cands`` with their ``devices`` (columns through
    ``col_map`` when given)."""
    r = cands.rows(w)
    col = cands.col[r.start:r.stop] if col_map is None else col_map[cands.col[r.start:r.stop]]
    return list(zip(col.tolist(), cands.need[r.start:r.stop].tolist(), cands.ub[r.start:r.stop].tolist(),
                    cands.cost_per_device[r.start:r.stop].tolist(), devices[r.start:r.stop].tolist(), strict=True))


def kernel_rows_kept(kout: TopKArrays, n_extra: int, max_vars: int | None) -> int:
    """How many of each workload's kernel candidates (sorted best first) to keep so
    that the candidate count stays within ``max_vars`` (``WorkBudgets.max_cpsat_vars``).

    ``n_extra`` is the number of columns that are always kept (greedy / hint ones).
    At least 1 per workload is kept, so the cap can be exceeded on huge meshes.
    """
    kc = kout["cand_col"]
    K = int(kc.shape[1]) if kc.ndim == 2 else 0
    if max_vars is None or K == 0:
        return K
    valid = (kc >= 0).sum(axis=1)
    for k in range(K, 0, -1):
        if int(np.minimum(valid, k).sum()) + n_extra <= max_vars:
            return k
    return 1


def build_candidates(
    snap: Snapshot,
    kout: TopKArrays,
    greedy_cols: NDArray[np.int32],
    max_vars: int | None = None,
) -> Candidates:
    """Top-K columns per workload, plus the greedy placer's columns (kept in the set
    so that the greedy plan is always a feasible hint). With ``max_vars`` the kernel's
    rows are trimmed to their best entries so the model stays within the cap."""
    W = len(snap.keys)
    cols = snap.cols
    ptr = [0]
    c_col: list[int] = []
    c_need: list[int] = []
    c_ub: list[int] = []
    c_cpd: list[int] = []
    kc, kn, kcost = kout["cand_col"], kout["cand_devices"], kout["cand_cost"]
    keep = kernel_rows_kept(kout, int((greedy_cols >= 0).sum()), max_vars)
    kc, kn, kcost = kc[:, :keep], kn[:, :keep], kcost[:, :keep]
    limit = snap.wls.site_limit
    # The greedy scanned every column: its choices outside the top-K get their
    # candidate records from the same pair evaluation as the kernel, in one call.
    extra_w: list[int] = []
    extra_c: list[int] = []
    for w in range(W):
        known = set(kc[w][kc[w] >= 0].tolist())
        for c in greedy_cols[w].tolist() if greedy_cols.size else []:
            if c >= 0 and c not in known:
                known.add(c)
                extra_w.append(w)
                extra_c.append(c)
    extra_pairs = snap.kernels.evaluate_pairs(np.asarray(extra_w, np.int32), np.asarray(extra_c, np.int32))
    e_n, e_cost = extra_pairs.devices, extra_pairs.cost
    extra: dict[int, list[tuple[int, float, float]]] = {}
    for w, c, n, cost in zip(extra_w, extra_c, e_n.tolist(), e_cost.tolist(), strict=True):
        extra.setdefault(w, []).append((c, n, cost))
    for w in range(W):
        seen: set[int] = set()
        row = [(int(c), float(n), float(cost)) for c, n, cost in zip(kc[w], kn[w], kcost[w], strict=True) if c >= 0]
        row += extra.get(w, [])
        for c, n, cost in row:
            if c in seen:
                continue
            seen.add(c)
            c_col.append(c)
            c_need.append(int(n))
            ub = n
            if limit[w] > 1:  # a share of the demand: what the column could give it alone
                room = float(cols.total_watts[c])
                if not snap.wls.interruptible[w]:
                    room = min(room, float(cols.firm_watts[c]))
                pw = float(cols.watts[c])
                ub = min(n, float(cols.cap_devices[c]), math.floor(room / pw) if pw > 0 else n)
            c_ub.append(int(ub))
            c_cpd.append(int(round(cost / n)) if n > 0 else 0)
        ptr.append(len(c_col))
    return Candidates.from_lists(ptr, c_col, c_need, c_ub, c_cpd)


def placed_mask(cands: Candidates, devices: Devices) -> NDArray[np.bool_]:
    """Which workloads have devices in this plan."""
    cs = np.concatenate(([0], np.cumsum(devices)))
    per = cs[cands.ptr[1:]] - cs[cands.ptr[:-1]]
    return np.asarray(per > 0, dtype=np.bool_)


def placed_value(snap: Snapshot, cands: Candidates, devices: Devices) -> int:
    """Phase A's objective: priority-weighted demand of the placed workloads."""
    return int(snap.value[placed_mask(cands, devices)].sum())


def plan_cost(cands: Candidates, devices: Devices) -> int:
    """Phase B's objective: energy >> latency >> stability, summed over devices."""
    return int((cands.cost_per_device * devices).sum())


def feasible_devices(snap: Snapshot, cands: Candidates, devices: Devices) -> bool:
    """Does a devices-per-candidate vector respect every capacity, power and
    placement rule (whole or nothing, maxSites in sites, exact device demand)?"""
    cols = snap.cols
    if cands.n == 0:
        return True
    if devices.shape != (cands.n,) or (devices < 0).any():
        return False
    dev = devices.astype(np.float64)
    used = np.bincount(cands.col, weights=dev, minlength=snap.n_cols)
    if (used > cols.cap_devices + 1e-9).any():
        return False
    watts = dev * cols.watts[cands.col]
    site = cols.site[cands.col]
    tot = np.bincount(site, weights=watts, minlength=snap.n_sites)
    if (tot > snap.site_total_watts + 1e-6).any():
        return False
    wof = cands.workload_of()
    ni = ~snap.wls.interruptible[wof].astype(bool)
    firm = np.bincount(site[ni], weights=watts[ni], minlength=snap.n_sites)
    if (firm > np.minimum(snap.site_firm_watts, snap.site_total_watts) + 1e-6).any():
        return False
    # per workload, over the candidates with devices (vectorised: a warm re-solve checks
    # the whole plan of a 10,000-workload mesh, 40 ms a check as a loop)
    limit = snap.wls.site_limit
    W = cands.n_workloads
    on = devices > 0
    w_on, s_on = wof[on].astype(np.int64), site[on].astype(np.int64)
    pairs = np.unique(w_on * max(1, snap.n_sites) + s_on)
    if (np.bincount(pairs // max(1, snap.n_sites), minlength=W) > limit[:W]).any():
        return False  # more distinct sites than maxSites
    whole = limit[w_on] <= 1
    if (np.bincount(w_on[whole], minlength=W) > 1).any() or (devices[on][whole] != cands.need[on][whole]).any():
        return False  # a whole workload: one candidate, with exactly its need
    placed = np.bincount(w_on, minlength=W) > 0
    accel = snap.wls.accel[:W]
    by_devices = placed & (accel > 0)
    if (np.bincount(wof, weights=dev, minlength=W)[by_devices] != accel[by_devices]).any():
        return False
    by_tokens = placed & ~(accel > 0)
    tokens = np.bincount(wof, weights=dev * cols.tps_milli[cands.col], minlength=W)
    return not (tokens[by_tokens] < snap.wls.tokens_milli[:W][by_tokens]).any()
