"""CP-SAT on the candidates: the model and its two deterministic phases.

Called only by :mod:`placement.solve` (the one solve sequence of the cold and warm
paths). Decision variables, per workload w and candidate column c (at site s):

- every workload: ``x[w]`` in {0,1}, placed or not (whole or nothing);
- whole (not splittable, incl. training gang): ``y[w,c]`` in {0,1}, exactly one
  ``y`` when ``x``, none otherwise; devices = need[w,c] x y;
- splittable: ``y[w,c]`` in {0,1}, devices ``d[w,c]`` in 0..ub with
  ``y <= d <= ub y``; a site indicator ``z[w,s] >= y[w,c]`` for the columns
  (accelerator pools) of site s, and ``sum_s z[w,s] <= max_sites x[w]``: maxSites
  counts SITES, so two pools of one factory are one site; device demand
  ``sum d = A x``; token demand ``sum d tps_milli >= D_milli x``.

Per column ``sum devices <= capacity``; per site ``sum watts devices <= usable
watts`` and, over non-interruptible workloads, ``<= firm watts`` (fleets: the
fleet cap). All integers (see :mod:`placement.capacity`).

Objective, lexicographic in two phases on the same model:

A. maximise placed priority-weighted demand ``sum value[w] x[w]`` with value =
   (priority + 1) x demand units (devices, or tokens/s over the mesh's median
   per-device rate). A known upper bound (the Lagrangian bound of
   :mod:`placement.bound`) is added as ``sum value x <= bound``: a valid cut that
   lets CP-SAT stop as soon as it is within ``target_gap`` of it;
B. hold A's value, minimise ``sum cost_per_device[w,c] devices[w,c]``, where cost
   per device = energy tier x 1e6 + latency tier (ms, <= 999) x 1e3 + stability
   (100 when off the current sites): energy >> latency >> stability.

Determinism: both phases stop on deterministic time (``max_deterministic_time``),
and the multi-worker portfolio runs with ``interleave_search``: CP-SAT then runs its
subsolvers in batches that synchronise at fixed points, so the search, and so the
plan, does not depend on thread timing. Without it the parallel portfolio is
non-deterministic whatever the limit. ``max_time_in_seconds`` is only the
safety net of ``SolverConfig.time_limit_s``; a phase it stops reports
``wall_limit_hit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from placement.candidates import Candidates, Devices, placed_value, plan_cost
from placement.problem import SolverConfig
from placement.snapshot import Snapshot

# Beyond this many candidates CP-SAT's presolve costs more than it saves. A fixed
# size threshold, so the choice is the same on every machine.
PRESOLVE_MAX_CANDIDATES = 20_000
# A phase whose wall time reaches this share of what it was given, without a proof,
# counts as stopped by the wall clock (CP-SAT stops a little before the limit).
_WALL_HIT_SHARE = 0.9


def _call(method: Callable[[], object]) -> None:
    """Call an OR-Tools method its type hints leave unannotated (``clear_hints``,
    ``clear_objective``) without an untyped call in this typed module."""
    method()


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one CP-SAT phase returned."""

    devices: Devices | None  # None: no solution (or the phase did not run)
    proven: bool  # CP-SAT's status OPTIMAL: optimal within the phase's gap limit
    exact: bool  # proven with no gap at all (CP-SAT's bound equals the objective)
    wall_limit_hit: bool  # stopped by the wall-clock safety net, not by its work budget
    ms: float  # wall time (a timing)
    bound: float = math.inf  # CP-SAT's proven bound on the phase's objective (over the candidates)


def solver_for(config: SolverConfig, dtime: float, wall_s: float, gap: float, n_candidates: int) -> cp_model.CpSolver:
    """A CP-SAT solver bounded by deterministic work; wall time only as a safety net."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.num_workers = config.workers
    p.interleave_search = True  # deterministic portfolio, for any number of workers
    p.random_seed = config.random_seed
    p.max_deterministic_time = dtime
    p.max_time_in_seconds = max(1e-3, wall_s)
    p.relative_gap_limit = gap
    p.cp_model_presolve = n_candidates <= PRESOLVE_MAX_CANDIDATES
    # Presolve's work counts against the deterministic budget: at its default depth
    # it can spend a whole small budget (1,000 workloads x 100 sites: "stopped after
    # presolve", no solution). One pass without probing leaves the budget to search.
    p.max_presolve_iterations = 1
    p.cp_model_probing_level = 0
    # The hint is a complete feasible plan, loaded as the first solution anyway;
    # re-deriving it by branching on every hinted literal (with the LP propagating
    # at each step) costs far more wall time than its deterministic time says.
    p.hint_conflict_limit = 0
    return solver


class CpSatModel:
    """The CP-SAT model over candidates, built once and solved in two phases."""

    def __init__(self, snap: Snapshot, cands: Candidates):
        m = cp_model.CpModel()
        self.m = m
        self.snap = snap
        self.cands = cands
        W = len(snap.keys)
        cols = snap.cols
        limit = snap.wls.site_limit
        accel = snap.wls.accel
        tok = snap.wls.tokens_milli
        site_of = cols.site
        watts = cols.watts
        interruptible = snap.wls.interruptible
        self.y: list[Any] = [None] * cands.n  # per candidate: column chosen
        self.d: list[Any] = [None] * cands.n  # per candidate: devices (splittable only)
        self.x: list[Any] = [None] * W  # per workload: placed
        self.z: dict[tuple[int, int], Any] = {}  # (workload, site): uses the site (>= 2 pools only)
        col_terms: dict[int, tuple[list[Any], list[int]]] = {}
        site_all: dict[int, tuple[list[Any], list[int]]] = {}
        site_ni: dict[int, tuple[list[Any], list[int]]] = {}
        obj_a: tuple[list[Any], list[int]] = ([], [])
        obj_b: tuple[list[Any], list[int]] = ([], [])

        def add(store: dict[int, tuple[list[Any], list[int]]], key: int, var: Any, coef: int) -> None:
            vs, cs = store.setdefault(key, ([], []))
            vs.append(var)
            cs.append(coef)

        for w in range(W):
            lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
            usable = [i for i in range(lo, hi) if int(cands.ub[i]) >= 1]
            if not usable:
                continue
            x = m.new_bool_var(f"x{w}")
            self.x[w] = x
            obj_a[0].append(x)
            obj_a[1].append(int(snap.value[w]))
            if limit[w] <= 1:
                ys = []
                for i in usable:
                    y = m.new_bool_var(f"y{i}")
                    self.y[i] = y
                    ys.append(y)
                    n = int(cands.need[i])
                    c = int(cands.col[i])
                    s = int(site_of[c])
                    add(col_terms, c, y, n)
                    add(site_all, s, y, n * int(watts[c]))
                    if not interruptible[w]:
                        add(site_ni, s, y, n * int(watts[c]))
                    obj_b[0].append(y)
                    obj_b[1].append(n * int(cands.cost_per_device[i]))
                m.add_exactly_one([*ys, ~x])  # one column when placed, none otherwise
                continue
            ds, tps = [], []
            by_site: dict[int, list[Any]] = {}
            for i in usable:
                ub = int(cands.ub[i])
                y = m.new_bool_var(f"y{i}")
                d = m.new_int_var(0, ub, f"d{i}")
                self.y[i] = y
                self.d[i] = d
                m.add(d <= ub * y)
                m.add(d >= y)
                ds.append(d)
                c = int(cands.col[i])
                s = int(site_of[c])
                by_site.setdefault(s, []).append(y)
                tps.append(int(cols.tps_milli[c]))
                add(col_terms, c, d, 1)
                add(site_all, s, d, int(watts[c]))
                if not interruptible[w]:
                    add(site_ni, s, d, int(watts[c]))
                obj_b[0].append(d)
                obj_b[1].append(int(cands.cost_per_device[i]))
            site_on = []
            for s, ys_of_site in by_site.items():
                if len(ys_of_site) == 1:
                    site_on.append(ys_of_site[0])
                    continue
                z = m.new_bool_var(f"z{w}_{s}")
                self.z[(w, s)] = z
                for y in ys_of_site:
                    m.add_implication(y, z)
                site_on.append(z)
            m.add(cp_model.LinearExpr.sum(site_on) <= int(limit[w]) * x)
            if accel[w] > 0:
                m.add(cp_model.LinearExpr.sum(ds) == int(accel[w]) * x)
            else:
                m.add(cp_model.LinearExpr.weighted_sum(ds, tps) >= int(tok[w]) * x)
        for c, (vs, cs) in col_terms.items():
            m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= int(cols.cap_devices[c]))
        for s, (vs, cs) in site_all.items():
            m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= int(snap.site_total_watts[s]))
        for s, (vs, cs) in site_ni.items():
            firm = int(min(snap.site_firm_watts[s], snap.site_total_watts[s]))
            if firm < int(snap.site_total_watts[s]):
                m.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= firm)
        self.obj_a = cp_model.LinearExpr.weighted_sum(*obj_a)
        self.obj_b = cp_model.LinearExpr.weighted_sum(*obj_b)

    def hint(self, devices: Devices) -> None:
        """Make ``devices`` (a feasible plan) CP-SAT's starting solution."""
        m = self.m
        _call(m.clear_hints)
        cands = self.cands
        for w, x in enumerate(self.x):
            if x is None:
                continue
            lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
            m.add_hint(x, bool(devices[lo:hi].sum() > 0))
            by_site: dict[int, bool] = {}
            for i in range(lo, hi):
                if self.y[i] is not None:
                    m.add_hint(self.y[i], bool(devices[i] > 0))
                if self.d[i] is not None:
                    m.add_hint(self.d[i], int(devices[i]))
                    s = int(self.snap.cols.site[cands.col[i]])
                    by_site[s] = by_site.get(s, False) or bool(devices[i] > 0)
            for s, on in by_site.items():
                z = self.z.get((w, s))
                if z is not None:
                    m.add_hint(z, on)

    def read(self, solver: cp_model.CpSolver) -> Devices:
        cands = self.cands
        dev = np.zeros(cands.n, dtype=np.int64)
        for i in range(cands.n):
            if self.d[i] is not None:
                dev[i] = solver.value(self.d[i])
            elif self.y[i] is not None:
                dev[i] = int(cands.need[i]) * int(solver.value(self.y[i]))
        return dev

    def _run(self, solver: cp_model.CpSolver, wall_s: float) -> PhaseResult:
        t0 = time.perf_counter()
        status = solver.solve(self.m)
        ms = (time.perf_counter() - t0) * 1e3
        proven = status == cp_model.OPTIMAL
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        exact = proven and abs(solver.best_objective_bound - solver.objective_value) < 0.5
        wall_hit = not proven and ms >= _WALL_HIT_SHARE * wall_s * 1e3
        bound = float(solver.best_objective_bound) if found else math.inf
        return PhaseResult(self.read(solver) if found else None, proven, exact, wall_hit, ms, bound)

    def phase_a(
        self, hint: Devices, config: SolverConfig, dtime: float, wall_s: float, upper_bound: float | None
    ) -> PhaseResult:
        """Maximise placed priority-weighted demand from ``hint``, within ``target_gap``
        of ``upper_bound`` (when known) or of CP-SAT's own bound."""
        self.hint(hint)
        if upper_bound is not None and math.isfinite(upper_bound):
            cap = max(math.floor(upper_bound), placed_value(self.snap, self.cands, hint))
            self.m.add(self.obj_a <= cap)
        self.m.maximize(self.obj_a)
        return self._run(solver_for(config, dtime, wall_s, config.budgets.target_gap, self.cands.n), wall_s)

    def phase_fewest_moves(
        self, start: Devices, stay: Devices, target_value: int, config: SolverConfig, dtime: float, wall_s: float,
    ) -> PhaseResult:
        """Place at least ``target_value``, keeping as many of ``stay``'s chosen
        columns as it can (the warm plan's, so the fewest workloads move); ``start``
        (such a plan) is the hint. The repair toward the floor runs this instead of
        phases A and B: a status patch per moved workload is what a user pays for."""
        self.m.add(self.obj_a >= target_value)
        kept = [self.y[i] for i in np.flatnonzero(stay > 0).tolist() if self.y[i] is not None]
        self.m.maximize(cp_model.LinearExpr.sum(kept))
        self.hint(start)
        return self._run(solver_for(config, dtime, wall_s, 0.0, self.cands.n), wall_s)

    def phase_b(self, start: Devices, config: SolverConfig, dtime: float, wall_s: float) -> PhaseResult:
        """Hold ``start``'s placed value; minimise energy >> latency >> stability."""
        self.m.add(self.obj_a >= placed_value(self.snap, self.cands, start))
        _call(self.m.clear_objective)
        self.m.minimize(self.obj_b)
        self.hint(start)
        res = self._run(solver_for(config, dtime, wall_s, config.budgets.relative_gap_limit, self.cands.n), wall_s)
        if res.devices is not None and plan_cost(self.cands, res.devices) > plan_cost(self.cands, start):
            return PhaseResult(None, res.proven, res.exact, res.wall_limit_hit, res.ms, res.bound)
        return res
