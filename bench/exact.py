"""The exact reference: phase A of the placement problem as a MIP, solved by HiGHS.

HiGHS through OR-Tools MathOpt (``SolverType.HIGHS``), which ships inside the
``ortools`` wheel the engine already depends on: the ``highspy`` wheel cannot be
loaded in the same process as ``ortools`` (both export HiGHS's C++ symbols; whichever
loads second fails with an undefined symbol), and the benchmarks run both.

Maximise the placed priority-weighted demand (``SolveStats.placed_priority_demand``)
under every constraint, over **every** feasible workload x column pair (no top-K).
The problem is re-derived by :class:`bench.baseline.Problem` from the engine's input
types alone (filters, integer units and values as docs/placement.md defines them), so
the reference shares no code with the engine. Meant for meshes up to about
200 workloads x 30 sites.

Model (``x`` placed, binary):

* whole workload (training, or not splittable): ``y[w,c]`` binary per feasible column
  whose capacity could hold it, ``sum_c y[w,c] = x[w]``, it takes ``need[w,c]`` devices;
* splittable: ``d[w,c]`` integer devices in ``0..ub`` and ``z[w,s]`` binary per site,
  ``d[w,c] <= ub z[w,s]``, ``sum_s z[w,s] <= maxSites x[w]``; device demand
  ``sum_c d = A x``, token demand ``sum_c d rate_c >= D x`` (milli-tokens/s);
* per column devices <= capacity; per site facility watts <= usable power and, over
  non-interruptible load, <= firm power; a fleet's draw <= ``maxFleetMW``.

:func:`solve` returns the proven optimum (``status == "optimal"``) or, when the time
limit stops HiGHS, the best plan found with HiGHS's best bound, and the placement
(token workloads trimmed of surplus devices) so the result can be checked like a plan.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field

from ortools.math_opt.python import mathopt

from bench.baseline import Problem, priority_demand, trim
from placement.problem import Mesh


@dataclass(slots=True)
class ExactResult:
    objective: int  # best placed priority-weighted demand found (the optimum when proven)
    bound: float  # HiGHS's best upper bound
    status: str  # "optimal", "time limit", or HiGHS's model status text
    seconds: float
    assignments: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    problem: Problem | None = None

    @property
    def proven(self) -> bool:
        return self.status == "optimal"


def solve(mesh: Mesh, time_limit_s: float = 60.0, problem: Problem | None = None) -> ExactResult:
    """Phase A to proven optimality (or the time limit), see the module docstring."""
    t0 = time.perf_counter()
    p = problem or Problem.of(mesh)
    m = mathopt.Model(name="phase-a")
    x: dict[int, mathopt.Variable] = {}
    pairs: dict[int, list[tuple[int, mathopt.Variable]]] = {}
    col_use: dict[int, list[mathopt.LinearExpression]] = {}
    site_w: dict[int, list[mathopt.LinearExpression]] = {}
    site_firm: dict[int, list[mathopt.LinearExpression]] = {}

    def use(c: int, term: mathopt.LinearExpression, interruptible: bool) -> None:
        col = p.columns[c]
        col_use.setdefault(c, []).append(term)
        site_w.setdefault(col.site, []).append(col.watts * term)
        if not interruptible:
            site_firm.setdefault(col.site, []).append(col.watts * term)

    for wi, w in enumerate(mesh.workloads):
        options: list[tuple[int, int]] = []
        for c in p.feasible[wi]:
            col = p.columns[c]
            budget = p.budget(w, p.sites[col.site])
            by_power = budget // col.watts if col.watts > 0 and math.isfinite(budget) else math.inf
            if p.whole(w):
                n = p.need(w, col)
                if n <= col.devices and n <= by_power:
                    options.append((c, n))
            else:
                ub = int(min(col.devices, by_power))
                if ub >= 1:
                    options.append((c, ub))
        if not options:
            continue
        xv = x[wi] = m.add_binary_variable(name=f"x{wi}")
        pairs[wi] = []
        if p.whole(w):
            ys = []
            for c, n in options:
                y = m.add_binary_variable()
                ys.append(y)
                pairs[wi].append((c, y))
                use(c, n * y, w.interruptible)
            m.add_linear_constraint(mathopt.fast_sum(ys) == xv)
            continue
        zs: dict[int, mathopt.Variable] = {}
        supply = []
        for c, ub in options:
            col = p.columns[c]
            d = m.add_integer_variable(lb=0, ub=ub)
            pairs[wi].append((c, d))
            if col.site not in zs:
                zs[col.site] = m.add_binary_variable()
            m.add_linear_constraint(d <= ub * zs[col.site])
            use(c, 1.0 * d, w.interruptible)
            # token rows scaled by the demand, so coefficients stay near 1
            supply.append(d if w.accelerators is not None else (col.tps_milli / p.demand_milli(w)) * d)
        m.add_linear_constraint(mathopt.fast_sum(zs.values()) <= p.site_limit(w) * xv)
        if w.accelerators is not None:
            m.add_linear_constraint(mathopt.fast_sum(supply) == w.accelerators * xv)
        else:
            m.add_linear_constraint(mathopt.fast_sum(supply) >= xv)
    for c, terms in col_use.items():
        m.add_linear_constraint(mathopt.fast_sum(terms) <= p.columns[c].devices)
    for s, terms in site_w.items():
        if math.isfinite(p.sites[s].usable_w):
            m.add_linear_constraint(mathopt.fast_sum(terms) <= p.sites[s].usable_w)
    for s, terms in site_firm.items():
        site = p.sites[s]
        if math.isfinite(site.firm_w) and site.firm_w < site.usable_w:
            m.add_linear_constraint(mathopt.fast_sum(terms) <= site.firm_w)
    if not x:
        return ExactResult(0, 0.0, "optimal", time.perf_counter() - t0, {}, p)
    m.maximize(mathopt.fast_sum(p.value[wi] * xv for wi, xv in x.items()))
    params = mathopt.SolveParameters(
        time_limit=dt.timedelta(seconds=time_limit_s), relative_gap_tolerance=0.0,
        absolute_gap_tolerance=0.5,  # values are integers: a gap below 1 proves the optimum
        random_seed=0,
    )
    r = mathopt.solve(m, mathopt.SolverType.HIGHS, params=params)
    reason = r.termination.reason
    text = ("optimal" if reason == mathopt.TerminationReason.OPTIMAL
            else "time limit" if r.termination.limit == mathopt.Limit.TIME else reason.name.lower())
    assignments: dict[str, list[tuple[int, int]]] = {}
    if r.has_primal_feasible_solution():
        sol = r.variable_values()
        for wi, xv in x.items():
            if sol[xv] < 0.5:
                continue
            w = mesh.workloads[wi]
            chosen = [(c, p.need(w, p.columns[c]) if p.whole(w) else int(round(sol[v])))
                      for c, v in pairs[wi] if sol[v] > 0.5]
            assignments[w.key] = trim(p, w, chosen)
    objective = priority_demand(p, assignments)
    bound = float(objective) if text == "optimal" else float(r.termination.objective_bounds.dual_bound)
    return ExactResult(objective, bound, text, time.perf_counter() - t0, assignments, p)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from tests.support.meshes import FAMILIES, family_mesh

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="base", choices=FAMILIES)
    ap.add_argument("--workloads", type=int, default=50)
    ap.add_argument("--sites", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    a = ap.parse_args(argv)
    r = solve(family_mesh(a.family, a.workloads, a.sites, a.seed), a.time_limit)
    print(f"{r.status}: {r.objective} (bound {r.bound:.0f}) in {r.seconds:.2f} s")


if __name__ == "__main__":
    main()
