"""Select: CP-SAT on the kernel's candidates, with greedy hint/fallback.

Called by :mod:`placement.pipeline` after the kernel has kept the top-K feasible site
columns per workload (plus whatever column the greedy placer chose). Decision
variables, per workload w and candidate column c:

- whole (not splittable, incl. training gang): ``y[w,c]`` in {0,1}, devices =
  need[w,c] x y, ``sum_c y <= 1``;
- splittable: ``x[w]``, ``y[w,c]`` in {0,1}, ``d[w,c]`` in 0..ub, ``y <= d <= ub y``,
  ``sum_c y <= max_sites x``; device demand ``sum d = A x``; token demand
  ``sum d tps_milli >= D_milli x`` (all or nothing).

Per column ``sum devices <= capacity``; per site ``sum watts devices <= usable
watts`` and, over non-interruptible workloads, ``<= firm watts`` (fleets: the
fleet cap). All integers (see :mod:`placement.capacity`).

Objective, lexicographic in two CP-SAT phases on the same model:
A. maximise placed priority-weighted demand ``sum value[w] x[w]`` with
   value = (priority + 1) x demand units (devices, or tokens/s over the mesh's
   median per-device rate);
B. hold A's value, minimise ``sum cost_per_device[w,c] devices[w,c]``, where
   cost per device = energy tier x 1e6 + latency tier (ms, <= 999) x 1e3 +
   stability (100 when off the current sites): energy >> latency >> stability.
The plan's upper bound is :mod:`placement.bound` (Lagrangian, over all pairs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from placement.problem import SolverConfig
from placement.snapshot import Snapshot
from placement_ext import evaluate_pairs


@dataclass(slots=True)
class Candidates:
    """Flat candidate list, grouped by workload (``ptr`` is CSR over workloads)."""

    ptr: np.ndarray  # [W+1]
    col: np.ndarray  # [N] column index
    need: np.ndarray  # [N] devices to serve the whole demand on this column
    ub: np.ndarray  # [N] most devices this column could give (splittable)
    cost_per_device: np.ndarray  # [N] int64
    latency_ms: np.ndarray  # [N]

    @property
    def n(self) -> int:
        return int(self.col.shape[0])

    @classmethod
    def from_lists(cls, ptr, col, need, ub, cost_per_device, latency_ms) -> Candidates:
        """Candidates from Python lists built row by row (the arrays get their dtypes)."""
        return cls(
            ptr=np.asarray(ptr, dtype=np.int64),
            col=np.asarray(col, dtype=np.int64),
            need=np.asarray(need, dtype=np.int64),
            ub=np.asarray(ub, dtype=np.int64),
            cost_per_device=np.asarray(cost_per_device, dtype=np.int64),
            latency_ms=np.asarray(latency_ms, dtype=np.float64),
        )


def kernel_rows_kept(kout: dict, n_extra: int, max_vars: int | None) -> int:
    """How many of each workload's kernel candidates (sorted best first) to keep so
    that the candidate count stays within ``max_vars`` (``SolverConfig.max_cpsat_vars``).

    ``n_extra`` is the number of columns that are always kept (greedy / hint ones).
    At least 1 per workload is kept, so the cap can be exceeded on huge meshes.
    """
    kc = kout["cand_col"]
    K = kc.shape[1] if kc.ndim == 2 else 0
    if max_vars is None or K == 0:
        return K
    valid = (kc >= 0).sum(axis=1)
    for k in range(K, 0, -1):
        if int(np.minimum(valid, k).sum()) + n_extra <= max_vars:
            return k
    return 1


def build_candidates(
    snap: Snapshot,
    kout: dict,
    greedy_cols: np.ndarray,
    greedy_n: np.ndarray,
    max_vars: int | None = None,
) -> Candidates:
    """Top-K columns per workload, plus the greedy placer's columns (kept in the set
    so that the greedy plan is always a feasible hint). With ``max_vars`` the kernel's
    rows are trimmed to their best entries so the model stays within the cap."""
    W = len(snap.keys)
    cols = snap.cols
    ptr = [0]
    c_col, c_need, c_ub, c_cpd, c_lat = [], [], [], [], []
    kc, kn, kcost, klat = kout["cand_col"], kout["cand_devices"], kout["cand_cost"], kout["cand_latency_ms"]
    keep = kernel_rows_kept(kout, int((greedy_cols >= 0).sum()), max_vars)
    kc, kn, kcost, klat = kc[:, :keep], kn[:, :keep], kcost[:, :keep], klat[:, :keep]
    limit = snap.wls["site_limit"]
    # The greedy scanned every column: its choices outside the top-K get their
    # candidate records from the same pair evaluation as the kernel, in one call.
    extra_w, extra_c = [], []
    for w in range(W):
        known = set(kc[w][kc[w] >= 0].tolist())
        for c in greedy_cols[w]:
            if c >= 0 and int(c) not in known:
                known.add(int(c))
                extra_w.append(w)
                extra_c.append(int(c))
    _, e_n, e_lat, e_cost = evaluate_pairs(cols, snap.wls, extra_w, extra_c)
    extra: dict[int, list[tuple[int, float, float, float]]] = {}
    for w, c, n, cost, lat in zip(extra_w, extra_c, e_n, e_cost, e_lat):
        extra.setdefault(w, []).append((c, float(n), float(cost), float(lat)))
    for w in range(W):
        seen = set()
        row = [(int(c), float(n), float(cost), float(l)) for c, n, cost, l in zip(kc[w], kn[w], kcost[w], klat[w]) if c >= 0]
        row += extra.get(w, [])
        for c, n, cost, lat in row:
            if c in seen:
                continue
            seen.add(c)
            c_col.append(c)
            c_need.append(n)
            if limit[w] > 1:
                w_room = cols["total_watts"][c]
                if not snap.wls["interruptible"][w]:
                    w_room = min(w_room, cols["firm_watts"][c])
                pw = cols["watts"][c]
                ub = min(n, cols["cap_devices"][c], math.floor(w_room / pw) if pw > 0 else n)
            else:
                ub = n
            c_ub.append(ub)
            c_cpd.append(int(round(cost / n)) if n > 0 else 0)
            c_lat.append(lat)
        ptr.append(len(c_col))
    return Candidates.from_lists(ptr, c_col, c_need, c_ub, c_cpd, c_lat)


def devices_from_greedy(cands: Candidates, greedy_cols: np.ndarray, greedy_n: np.ndarray) -> np.ndarray:
    """Greedy placement expressed as devices per candidate."""
    dev = np.zeros(cands.n, dtype=np.int64)
    for w in range(len(cands.ptr) - 1):
        lo, hi = cands.ptr[w], cands.ptr[w + 1]
        for c, n in zip(greedy_cols[w], greedy_n[w]):
            if c < 0:
                continue
            idx = lo + np.flatnonzero(cands.col[lo:hi] == c)
            dev[idx[0]] += int(n)
    return dev


def placed_mask(cands: Candidates, devices: np.ndarray) -> np.ndarray:
    W = len(cands.ptr) - 1
    cs = np.concatenate(([0], np.cumsum(devices)))
    per = cs[cands.ptr[1:]] - cs[cands.ptr[:-1]]
    return (per > 0)[:W]


def placed_value(snap: Snapshot, cands: Candidates, devices: np.ndarray) -> int:
    return int(snap.value[placed_mask(cands, devices)].sum())


def plan_cost(cands: Candidates, devices: np.ndarray) -> int:
    return int((cands.cost_per_device * devices).sum())


@dataclass(slots=True)
class CpSatResult:
    devices: np.ndarray
    status: str
    objective: float  # phase A value
    cpsat_bound: float
    cost: float
    wall_ms: float
    phase_b_status: str


class _Model:
    """The CP-SAT model over candidates (built once, solved in two phases)."""

    def __init__(self, snap: Snapshot, cands: Candidates):
        m = cp_model.CpModel()
        self.m = m
        W = len(snap.keys)
        cols = snap.cols
        limit = snap.wls["site_limit"]
        accel = snap.wls["accel"]
        tok = snap.wls["tokens_milli"]
        self.dev_terms: list = []  # per candidate: (expr var, coef) so devices = coef*var
        self.y: list = [None] * cands.n
        self.d: list = [None] * cands.n
        self.x: list = [None] * W
        col_vars: dict[int, tuple[list, list]] = {}
        site_all: dict[int, tuple[list, list]] = {}
        site_ni: dict[int, tuple[list, list]] = {}
        obj_a_vars, obj_a_coefs = [], []
        obj_b_vars, obj_b_coefs = [], []
        site_of = cols["site"]
        watts = cols["watts"]
        interruptible = snap.wls["interruptible"]

        def add(store, key, var, coef):
            vs, cs = store.setdefault(key, ([], []))
            vs.append(var)
            cs.append(coef)

        for w in range(W):
            lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
            if lo == hi:
                continue
            whole = limit[w] <= 1
            if whole:
                ys = []
                for i in range(lo, hi):
                    y = m.new_bool_var("")
                    self.y[i] = y
                    ys.append(y)
                    n = int(cands.need[i])
                    c = int(cands.col[i])
                    add(col_vars, c, y, n)
                    s = int(site_of[c])
                    add(site_all, s, y, n * int(watts[c]))
                    if not interruptible[w]:
                        add(site_ni, s, y, n * int(watts[c]))
                    obj_b_vars.append(y)
                    obj_b_coefs.append(n * int(cands.cost_per_device[i]))
                m.add_at_most_one(ys)
                self.x[w] = ys
                for y in ys:
                    obj_a_vars.append(y)
                    obj_a_coefs.append(int(snap.value[w]))
            else:
                x = m.new_bool_var("")
                self.x[w] = [x]
                ys, ds, tps = [], [], []
                for i in range(lo, hi):
                    ub = int(cands.ub[i])
                    if ub < 1:
                        continue
                    y = m.new_bool_var("")
                    d = m.new_int_var(0, ub, "")
                    self.y[i] = y
                    self.d[i] = d
                    m.add(d <= ub * y)
                    m.add(d >= y)
                    ys.append(y)
                    ds.append(d)
                    c = int(cands.col[i])
                    tps.append(int(cols["tps_milli"][c]))
                    add(col_vars, c, d, 1)
                    s = int(site_of[c])
                    add(site_all, s, d, int(watts[c]))
                    if not interruptible[w]:
                        add(site_ni, s, d, int(watts[c]))
                    obj_b_vars.append(d)
                    obj_b_coefs.append(int(cands.cost_per_device[i]))
                if not ys:
                    m.add(x == 0)
                    continue
                m.add(cp_model.LinearExpr.sum(ys) <= int(limit[w]) * x)
                if accel[w] > 0:
                    m.add(cp_model.LinearExpr.sum(ds) == int(accel[w]) * x)
                else:
                    m.add(cp_model.LinearExpr.weighted_sum(ds, tps) >= int(tok[w]) * x)
                obj_a_vars.append(x)
                obj_a_coefs.append(int(snap.value[w]))
        for c, (vs, cs) in col_vars.items():
            capc = int(cols["cap_devices"][c])
            m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= capc)
        for s, (vs, cs) in site_all.items():
            m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= int(snap.site_total_watts[s]))
        for s, (vs, cs) in site_ni.items():
            firm = int(min(snap.site_firm_watts[s], snap.site_total_watts[s]))
            if firm < int(snap.site_total_watts[s]):
                m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= firm)
        self.obj_a = cp_model.LinearExpr.weighted_sum(obj_a_vars, obj_a_coefs)
        self.obj_b = cp_model.LinearExpr.weighted_sum(obj_b_vars, obj_b_coefs)
        self.cands = cands
        self.snap = snap

    def hint(self, devices: np.ndarray) -> None:
        m = self.m
        m.clear_hints()
        cands = self.cands
        W = len(self.x)
        for w in range(W):
            lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
            if lo == hi:
                continue
            placed = bool(devices[lo:hi].sum() > 0)
            for i in range(lo, hi):
                if self.y[i] is not None:
                    m.add_hint(self.y[i], bool(devices[i] > 0))
                if self.d[i] is not None:
                    m.add_hint(self.d[i], int(devices[i]))
            if self.snap.wls["site_limit"][w] > 1:
                m.add_hint(self.x[w][0], placed)

    def read(self, solver: cp_model.CpSolver) -> np.ndarray:
        cands = self.cands
        dev = np.zeros(cands.n, dtype=np.int64)
        for i in range(cands.n):
            if self.d[i] is not None:
                dev[i] = solver.value(self.d[i])
            elif self.y[i] is not None:
                dev[i] = int(cands.need[i]) * solver.value(self.y[i])
        return dev


PRESOLVE_MAX_CANDIDATES = 20_000  # beyond this CP-SAT's presolve eats the budget


def _params(config: SolverConfig, time_s: float, n: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = max(1, config.num_workers)
    p.random_seed = config.random_seed
    p.max_time_in_seconds = max(0.05, time_s)
    p.relative_gap_limit = config.relative_gap_limit
    p.cp_model_presolve = n <= PRESOLVE_MAX_CANDIDATES
    return solver


class _StopAt(cp_model.CpSolverSolutionCallback):
    """Stops the search once the objective reaches a target (the LP bound's
    ``1 - target_gap``): the gap is then certified by the LP, not by CP-SAT's own,
    usually weaker, bound."""

    def __init__(self, target: float):
        super().__init__()
        self.target = target

    def on_solution_callback(self) -> None:
        if self.objective_value >= self.target:
            self.stop_search()


def solve_cpsat(
    snap: Snapshot,
    cands: Candidates,
    hint: np.ndarray,
    config: SolverConfig,
    target_objective: float | None = None,
    budget_s: float | None = None,
) -> CpSatResult:
    """Two-phase CP-SAT (A: placed demand, B: cost with A held), hinted.

    ``target_objective`` (phase A value, e.g. from the bound) stops phase A early.
    ``budget_s`` is the wall time left for this call (model build included; default
    ``config.time_limit_s``): phase A gets ``phase_a_fraction`` of what is left
    after the model is built, phase B the rest.
    """
    t0 = time.perf_counter()
    if budget_s is None:
        budget_s = config.time_limit_s
    model = _Model(snap, cands)
    hint_value = placed_value(snap, cands, hint)
    model.hint(hint)
    model.m.maximize(model.obj_a)
    budget = budget_s - (time.perf_counter() - t0)
    solver = _params(config, budget * config.phase_a_fraction, cands.n)
    if target_objective is not None and hint_value >= target_objective:
        st = None
    else:
        st = solver.solve(model.m, _StopAt(target_objective) if target_objective is not None else None)
    if st is None:  # the hint already meets the target: phase A is done
        dev_a, val_a, bound_a, status = hint, hint_value, math.nan, "HINT_AT_TARGET"
        return _phase_b(snap, cands, model, config, t0, budget_s, dev_a, val_a, bound_a, status)
    status = solver.status_name(st)
    if status == "FEASIBLE" and target_objective is not None and solver.objective_value >= target_objective:
        status = "AT_TARGET"
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpSatResult(hint, status, float(hint_value), math.nan, float(plan_cost(cands, hint)),
                           (time.perf_counter() - t0) * 1e3, "SKIPPED")
    dev_a = model.read(solver)
    val_a = placed_value(snap, cands, dev_a)
    bound_a = solver.best_objective_bound
    if val_a < hint_value:  # never below the hint
        dev_a, val_a = hint, hint_value
    return _phase_b(snap, cands, model, config, t0, budget_s, dev_a, val_a, bound_a, status)


def _phase_b(snap, cands, model, config, t0, budget_s, dev_a, val_a, bound_a, status) -> CpSatResult:
    # phase B: hold the placed demand, minimise energy >> latency >> stability
    model.m.add(model.obj_a >= val_a)
    model.m.clear_objective()
    model.m.minimize(model.obj_b)
    model.hint(dev_a)
    budget = budget_s - (time.perf_counter() - t0)
    dev = dev_a
    b_status = "SKIPPED"
    if budget > 0.05:
        solver_b = _params(config, budget, cands.n)
        st_b = solver_b.solve(model.m)
        b_status = solver_b.status_name(st_b)
        if st_b in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            dev_b = model.read(solver_b)
            if placed_value(snap, cands, dev_b) >= val_a and plan_cost(cands, dev_b) <= plan_cost(cands, dev_a):
                dev = dev_b
    return CpSatResult(dev, status, float(val_a), float(bound_a), float(plan_cost(cands, dev)),
                       (time.perf_counter() - t0) * 1e3, b_status)

