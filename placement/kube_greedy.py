"""A second greedy placer that scores sites as kube-scheduler does (LeastAllocated).

Called by :mod:`placement.pipeline` (cold path) next to the compiled multi-start
greedy of :mod:`placement.greedy`, which picks the *cheapest* column. On some meshes
(shared power, many small jobs among a few huge gangs) spreading load the way
kube-scheduler does leaves room the cheapest-first greedy uses up, so the engine
runs both and keeps the better one as its hint and floor: the plan is then never
below what a kube-scheduler-style placement of the same mesh would give.

The rules, on the engine's own integer arrays (:mod:`placement.snapshot`):

* queue: priority high to low, then input order;
* filter: the kernel's static filters (``placement_ext.MeshKernels.feasible_pairs``),
  then room now (devices left, the site's usable power, firm power for
  non-interruptible load);
* score: LeastAllocated, the mean of the column's free device fraction and the
  site's free power fraction after binding (an uncapped site counts as all free);
  ties go to the lowest column index;
* bind whole or nothing: a workload limited to one site takes one column; a
  splittable one fills the best-scored sites in turn (each site's pools best first)
  up to its site limit, gives back the devices a token demand no longer needs
  (slowest first), or is not placed at all.

Deterministic (no clock, no randomness); one vectorised scoring per workload.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from placement.capacity import MAX_BUDGET_WATTS
from placement.greedy import GreedyRun, greedy_order
from placement.snapshot import Snapshot


class _State:
    """Capacity in use while the queue is placed (devices per column, watts per site)."""

    def __init__(self, snap: Snapshot) -> None:
        cols = snap.cols
        self.site = cols.site.astype(np.intp)
        self.cap = cols.cap_devices.astype(np.int64)
        self.watts = cols.watts.astype(np.int64)
        self.tps = cols.tps_milli.astype(np.int64)
        total = snap.site_total_watts
        self.total = total
        self.firm = np.minimum(snap.site_firm_watts, total)
        # an uncapped site (MAX_BUDGET_WATTS stands in for inf) is all free power
        self.uncapped = total >= MAX_BUDGET_WATTS
        self.used_dev = np.zeros(self.cap.shape[0], dtype=np.int64)
        self.used_w = np.zeros(total.shape[0], dtype=np.float64)
        self.used_ni = np.zeros(total.shape[0], dtype=np.float64)

    def room(self, c: NDArray[np.intp], interruptible: bool) -> NDArray[np.int64]:
        """Devices of columns ``c`` a workload could still take (devices and power)."""
        s = self.site[c]
        free_w = self.total[s] - self.used_w[s]
        if not interruptible:
            free_w = np.minimum(free_w, self.firm[s] - self.used_ni[s])
        w = self.watts[c]
        by_power = np.where(w > 0, np.floor(np.maximum(free_w, 0.0) / np.maximum(w, 1)), np.inf)
        room: NDArray[np.int64] = np.minimum(self.cap[c] - self.used_dev[c], by_power).astype(np.int64)
        return room

    def score(self, c: NDArray[np.intp], n: NDArray[np.int64] | int) -> NDArray[np.float64]:
        """LeastAllocated after ``n`` more devices on columns ``c``."""
        cap = self.cap[c]
        dev = np.where(cap > 0, (cap - self.used_dev[c] - n) / np.maximum(cap, 1), 0.0)
        s = self.site[c]
        tot = self.total[s]
        pw = np.where(tot > 0, (tot - self.used_w[s] - n * self.watts[c]) / np.where(tot > 0, tot, 1.0), 0.0)
        pw = np.where(self.uncapped[s], 1.0, pw)
        return (dev + pw) / 2.0

    def take(self, c: int, n: int, interruptible: bool) -> None:
        self.used_dev[c] += n
        s = self.site[c]
        self.used_w[s] += n * self.watts[c]
        if not interruptible:
            self.used_ni[s] += n * self.watts[c]


def kube_greedy(snap: Snapshot, threads: int = 1) -> GreedyRun:
    """Place ``snap``'s workloads kube-scheduler's way (see the module doc)."""
    W = len(snap.keys)
    wls = snap.wls
    ptr, fcol, _ = snap.kernels.feasible_pairs(threads)
    st = _State(snap)
    chosen: list[list[tuple[int, int]]] = [[] for _ in range(W)]
    for w in greedy_order(snap).tolist():
        c = fcol[int(ptr[w]):int(ptr[w + 1])].astype(np.intp)
        if c.size == 0:
            continue
        intr = bool(wls.interruptible[w])
        accel = int(wls.accel[w])
        demand = int(wls.tokens_milli[w])
        if int(wls.site_limit[w]) <= 1:
            need = np.full(c.size, accel, dtype=np.int64) if accel > 0 else -(-demand // np.maximum(st.tps[c], 1))
            fits = st.room(c, intr) >= need
            if not fits.any():
                continue
            score = np.where(fits, st.score(c, need), -np.inf)
            k = int(np.argmax(score))
            chosen[w] = [(int(c[k]), int(need[k]))]
            st.take(int(c[k]), int(need[k]), intr)
        else:
            chosen[w] = _fill(st, c, intr, accel, demand, int(wls.site_limit[w]))
    return _as_run(W, chosen)


def _fill(st: _State, c: NDArray[np.intp], intr: bool, accel: int, demand: int, limit: int) -> list[tuple[int, int]]:
    """A splittable workload: the best-scored sites in turn, up to ``limit``; all or nothing."""
    c = c[st.room(c, intr) > 0]
    if c.size == 0:
        return []
    score0 = st.score(c, 0)
    sites = st.site[c]
    best: dict[int, float] = {}
    for s, v in zip(sites.tolist(), score0.tolist(), strict=True):
        if s not in best or v > best[s]:
            best[s] = v
    ranked = sorted(best, key=lambda s: (-best[s], s))[:limit]
    left = accel if accel > 0 else demand
    taken: list[tuple[int, int]] = []
    for s in ranked:
        on = c[sites == s]
        sc = st.score(on, 0)  # at the time this site is reached, as kube-scheduler would
        for col in [int(on[i]) for i in np.lexsort((on, -sc))]:
            if left <= 0:
                break
            rate = int(st.tps[col])
            want = left if accel > 0 else -(-left // max(rate, 1))
            n = min(int(st.room(np.asarray([col], dtype=np.intp), intr)[0]), want)
            if n > 0:  # pools of one site share its power: take as we go
                taken.append((col, n))
                st.take(col, n, intr)
                left -= n if accel > 0 else n * rate
        if left <= 0:
            kept = dict(taken) if accel > 0 else _trim(st, taken, demand)
            for col, n in taken:
                st.take(col, kept.get(col, 0) - n, intr)
            return [(col, kept[col]) for col, _ in taken if kept.get(col, 0) > 0]
    for col, n in taken:  # all or nothing
        st.take(col, -n, intr)
    return []


def _trim(st: _State, taken: list[tuple[int, int]], demand: int) -> dict[int, int]:
    """Devices a token demand does not need, dropped slowest column first."""
    n = dict(taken)
    supply = sum(k * int(st.tps[c]) for c, k in n.items())
    for c in sorted(n, key=lambda c: (int(st.tps[c]), c)):
        rate = int(st.tps[c])
        drop = min(n[c], (supply - demand) // rate) if rate > 0 else 0
        n[c] -= drop
        supply -= drop * rate
    return n


def _as_run(W: int, chosen: list[list[tuple[int, int]]]) -> GreedyRun:
    """The placement as a :class:`~placement.greedy.GreedyRun` (columns, devices, placed)."""
    width = max((len(x) for x in chosen), default=0)
    cols = np.full((W, width), -1, dtype=np.int32)
    devices = np.zeros((W, width), dtype=np.float64)
    for w, row in enumerate(chosen):
        for j, (c, n) in enumerate(row):
            cols[w, j] = c
            devices[w, j] = n
    return GreedyRun(cols=cols, devices=devices, placed=np.asarray([bool(x) for x in chosen], dtype=bool))
