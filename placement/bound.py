"""Upper bound on phase A (placed priority-weighted demand) valid for the FULL problem.

Called by :mod:`placement.pipeline` (cold and warm paths; the shared solve sequence
of :mod:`placement.solve` turns it into phase A's target) and the benchmarks. It
covers every feasible workload x site-column pair, not only the kernel's top-K
candidates, so ``gap`` is measured against the real problem. Up to
``WorkBudgets.lp_bound_max_pairs`` pairs the bound is the LP of
:mod:`placement.lp_bound` (never looser than the Lagrangian below, whose dual it
is, strengthened); beyond, or when GLOP does not prove it, the Lagrangian:

Lagrangian relaxation of the coupling constraints, each scaled by its right-hand
side: per column ``sum devices / cap <= 1`` (multiplier ``mu``), per site
``sum watts x devices / usable <= 1`` (``lam``) and, where firm < usable,
``sum_{non-interruptible} watts x devices / firm <= 1`` (``phi``). For any
multipliers >= 0,

    L = sum(mu) + sum(lam) + sum(phi)
        + sum_w max(0, value[w] - min_{pairs p of w} coef[p] x price[col p])

is an upper bound on the best placement, where the price of a device of column c at
site s is ``mu_c / cap_c + watts_c (lam_s / usable_s + [non-interruptible] phi_s /
firm_s)`` and ``coef`` relaxes splittable workloads (see ``_pair_coef``, a ``cdef``
function of placement_ext/_kernels.pyx). The subproblem is evaluated over all pairs by
the ``nogil`` Cython kernel ``lagrangian_eval``; the multipliers are improved by a
deflected subgradient method with Polyak steps towards the best known plan value,
and the smallest ``L`` seen is the bound. Multipliers can be warm-started (a warm
re-solve passes the previous plan's).

The loop is bounded by its step count only (``WorkBudgets.bound_max_iters``), never
by the clock, so the bound (and the target it gives CP-SAT) is the same on a busy
and an idle machine; each step is a deterministic parallel reduction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.lp_bound import lp_bound
from placement.snapshot import Snapshot
from placement_ext import lagrangian_eval

BOUND_METHOD = "Lagrangian relaxation (capacity + power), all feasible pairs"
CPSAT_BOUND_METHOD = "CP-SAT's proof over every feasible pair (all are candidates)"
LP_BOUND_METHOD = "LP relaxation with per-column limits and clique cuts (GLOP), all feasible pairs"
# Below this many pairs one thread evaluates the subproblem faster than a team that
# synchronises on every step (the result is the same with any thread count).
SERIAL_PAIRS = 200_000


@dataclass(slots=True)
class Pairs:
    """All feasible pairs of the full problem (CSR over workloads)."""

    ptr: NDArray[np.int64]  # [W+1]
    col: NDArray[np.int32]  # [N]
    coef: NDArray[np.float64]  # [N], devices consumed in the subproblem

    @property
    def n(self) -> int:
        return int(self.col.shape[0])


@dataclass(slots=True)
class BoundResult:
    bound: float
    multipliers: NDArray[np.float64]  # [C + 2 S] (mu, lam, phi), scaled
    iterations: int  # subgradient steps (0 when the LP gave the bound)
    ms: float  # wall time (a timing: not part of the result)
    method: str = BOUND_METHOD
    # the LP's placed share per workload (None: Lagrangian bound), see placement.lp_bound
    lp_share: NDArray[np.float64] | None = None
    lp_pair_share: NDArray[np.float64] | None = None  # per pair of the Pairs it was solved on


def all_pairs(snap: Snapshot, threads: int) -> Pairs:
    ptr, col, coef = snap.kernels.feasible_pairs(max(1, threads))
    return Pairs(ptr=ptr, col=col, coef=coef)


def full_bound(
    snap: Snapshot,
    best_known: float,
    threads: int,
    max_iters: int,
    init: NDArray[np.float64] | None = None,
    lp_max_pairs: int = 0,
    pairs: Pairs | None = None,
) -> BoundResult:
    """The bound over all feasible pairs (``pairs``, computed by the Cython kernel
    when not given): the LP of :mod:`placement.lp_bound` when there are at most
    ``lp_max_pairs`` of them and GLOP proves it, else :func:`lagrangian_bound`;
    timed together."""
    t0 = time.perf_counter()
    if pairs is None:
        pairs = all_pairs(snap, threads)
    res = None
    if 0 < pairs.n <= lp_max_pairs:
        res = lp_relaxation(snap, pairs)
        if res is not None:
            # the Lagrangian at the LP's duals is a bound evaluated exactly (no solver
            # tolerance to cover); where the cuts do not bind it is the tighter figure
            at_duals = lagrangian_bound(snap, pairs, best_known, 1, 1, res.multipliers)
            res.bound = min(res.bound, at_duals.bound)
    if res is None:
        res = lagrangian_bound(snap, pairs, best_known, 1 if pairs.n < SERIAL_PAIRS else threads, max_iters, init)
    res.ms = (time.perf_counter() - t0) * 1e3
    return res


def lp_relaxation(snap: Snapshot, pairs: Pairs) -> BoundResult | None:
    """:func:`placement.lp_bound.lp_bound` on ``snap``'s arrays (None: not proven)."""
    cols = snap.cols
    lp = lp_bound(
        snap.value.astype(np.float64),
        pairs.ptr,
        pairs.col,
        pairs.coef,
        snap.wls.site_limit <= 1,
        snap.wls.interruptible.astype(bool),
        cols.site.astype(np.int64),
        cols.watts.astype(np.float64),
        cols.cap_devices.astype(np.float64),
        snap.site_total_watts.astype(np.float64),
        np.minimum(snap.site_firm_watts, snap.site_total_watts).astype(np.float64),
    )
    if lp is None:
        return None
    return BoundResult(
        bound=lp.bound, multipliers=lp.multipliers, iterations=0, ms=lp.ms, method=LP_BOUND_METHOD, lp_share=lp.share,
        lp_pair_share=lp.pair_share,
    )


class _Rows:
    """The relaxed rows: right-hand sides and the column -> price map."""

    def __init__(self, snap: Snapshot):
        cols = snap.cols
        self.C = snap.n_cols
        self.S = snap.n_sites
        self.site = cols.site.astype(np.int64)
        self.watts = cols.watts.astype(np.float64)
        self.cap = cols.cap_devices.astype(np.float64)
        self.total = snap.site_total_watts.astype(np.float64)
        self.firm = np.minimum(snap.site_firm_watts, snap.site_total_watts).astype(np.float64)
        # rows that can never bind (empty, "no cap", firm == usable) keep multiplier 0
        self.active = np.concatenate(
            [self.cap > 0, self.total > 0, (self.firm > 0) & (self.firm < self.total)]
        )

    def prices(self, pi: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        C, S = self.C, self.S
        mu, lam, phi = pi[:C], pi[C : C + S], pi[C + S :]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_dev = np.where(self.cap > 0, mu / np.where(self.cap > 0, self.cap, 1.0), 0.0)
            per_w_all = np.where(self.total > 0, lam / np.where(self.total > 0, self.total, 1.0), 0.0)
            per_w_ni = np.where(self.firm > 0, phi / np.where(self.firm > 0, self.firm, 1.0), 0.0)
        p_int = per_dev + self.watts * per_w_all[self.site]
        p_ni = p_int + self.watts * per_w_ni[self.site]
        return p_int, p_ni

    def subgradient(
        self, pairs: Pairs, choice: NDArray[np.int64], interruptible: NDArray[np.uint8]
    ) -> NDArray[np.float64]:
        """dL/dpi = 1 - (load of the subproblem's choices) / rhs, per row."""
        sel = choice[choice >= 0]
        w_of = np.flatnonzero(choice >= 0)
        c = pairs.col[sel].astype(np.int64)
        dev = pairs.coef[sel]
        load_c = np.bincount(c, weights=dev, minlength=self.C)
        pw = dev * self.watts[c]
        s = self.site[c]
        load_s = np.bincount(s, weights=pw, minlength=self.S)
        ni = ~interruptible[w_of].astype(bool)
        load_f = np.bincount(s[ni], weights=pw[ni], minlength=self.S)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.concatenate(
                [
                    1.0 - load_c / np.where(self.cap > 0, self.cap, 1.0),
                    1.0 - load_s / np.where(self.total > 0, self.total, 1.0),
                    1.0 - load_f / np.where(self.firm > 0, self.firm, 1.0),
                ]
            )
        g[~self.active] = 0.0
        return g


def lagrangian_bound(
    snap: Snapshot,
    pairs: Pairs,
    best_known: float,
    threads: int = 1,
    max_iters: int = 300,
    init: NDArray[np.float64] | None = None,
) -> BoundResult:
    """Smallest Lagrangian value found by subgradient steps (a valid upper bound).

    ``best_known`` (the value of a feasible plan, e.g. the greedy's) is the Polyak
    target; ``init`` warm-starts the multipliers (length C + 2 S, else ignored).
    Stops after ``max(1, max_iters)`` evaluations or once the bound is within 1e-4
    of ``best_known``.
    """
    t0 = time.perf_counter()
    rows = _Rows(snap)
    value = snap.value.astype(np.float64)
    intr = snap.wls.interruptible.astype(np.uint8)
    n = rows.C + 2 * rows.S
    pi = np.zeros(n)
    if init is not None and init.shape == (n,):
        pi = np.where(rows.active, np.maximum(init, 0.0), 0.0)
    best_l = math.inf
    best_pi = pi.copy()
    theta = 1.0
    since = 0
    d_prev = np.zeros(n)
    iterations = 0
    for _ in range(max(1, max_iters)):
        iterations += 1
        p_int, p_ni = rows.prices(pi)
        total, choice = lagrangian_eval(pairs.ptr, pairs.col, pairs.coef, value, intr, p_int, p_ni, threads)
        lag = float(pi.sum()) + total
        if lag < best_l - 1e-9 * abs(best_l if math.isfinite(best_l) else lag):
            best_l, best_pi, since = lag, pi.copy(), 0
        else:
            since += 1
            if since >= 10:  # no progress: shorter steps, restart from the best point
                theta *= 0.5
                since = 0
                pi = best_pi.copy()
                d_prev[:] = 0.0
                continue
        if best_l <= best_known * (1 + 1e-4) or theta < 1e-4:
            break
        g = rows.subgradient(pairs, choice, intr)
        # project: a row with pi = 0 and slack cannot move below 0
        g[(pi <= 0) & (g > 0)] = 0.0
        d = g + 0.3 * d_prev  # deflection damps zig-zagging
        dd = float(d @ d)
        if dd <= 0.0:
            break  # no violated row: the subproblem's choice is feasible for the rows
        step = theta * max(lag - best_known, 1e-9 * abs(lag)) / dd
        pi = np.maximum(0.0, pi - step * d)
        d_prev = d
    # float safety: the bound is on an integer objective
    bound = best_l * (1.0 + 1e-12)
    return BoundResult(bound=bound, multipliers=best_pi, iterations=iterations, ms=(time.perf_counter() - t0) * 1e3)


INCREMENTAL_BOUND_METHOD = (
    "Lagrangian relaxation (capacity + power), all feasible pairs, at the previous plan's multipliers "
    "(unchanged workloads' terms kept, changed ones evaluated)"
)


def workload_terms(
    snap: Snapshot, pairs: Pairs, multipliers: NDArray[np.float64], threads: int = 1
) -> NDArray[np.float64]:
    """Each workload's term ``max(0, value - min coef x price)`` of the Lagrangian at
    ``multipliers``: ``multipliers.sum()`` plus their sum is the bound there. A warm
    re-solve of a huge mesh keeps the terms of unchanged workloads (same pairs, same
    prices while the sites are unchanged) and evaluates only the changed ones."""
    rows = _Rows(snap)
    pi = np.where(rows.active, np.maximum(multipliers, 0.0), 0.0)
    p_int, p_ni = rows.prices(pi)
    value = snap.value.astype(np.float64)
    intr = snap.wls.interruptible.astype(np.uint8)
    terms = np.zeros(value.shape[0])
    if pairs.n == 0:
        return terms
    _, choice = lagrangian_eval(pairs.ptr, pairs.col, pairs.coef, value, intr, p_int, p_ni, threads)
    ok = choice >= 0
    pick = choice[ok]
    c = pairs.col[pick].astype(np.int64)
    price = np.where(intr[ok] == 1, p_int[c], p_ni[c])
    terms[ok] = np.maximum(0.0, value[ok] - pairs.coef[pick] * price)
    return terms


def lagrangian_at(snap: Snapshot, multipliers: NDArray[np.float64], terms_sum: float) -> float:
    """The Lagrangian bound from its multipliers (rows that cannot bind count 0, as in
    :func:`workload_terms`) and the sum of its workload terms (float safety: the bound
    is on an integer objective)."""
    rows = _Rows(snap)
    pi = np.where(rows.active, np.maximum(multipliers, 0.0), 0.0)
    return (float(pi.sum()) + terms_sum) * (1.0 + 1e-12)

