"""Solver benchmark: the plan against its own bound and against the engine's
kube-scheduler-order greedy.

``python -m bench.solver --workloads W --sites S --json`` prints one JSON object:
objective (placed priority-weighted demand), bound (the plan's Lagrangian bound over
ALL feasible pairs), ratios to the bound for the plan and for the greedy (one workload
at a time, priority order, filter-and-score over all sites), solve time, whether the
wall-clock safety limit was hit (then the plan depends on the machine), and a warm
re-solve after 1% of workloads change (``previous=plan``) against a cold solve of the
same changed mesh, and a warm re-plan after a single workload changes
(``perturb(mesh, fraction=1 / W)``: one workload's demand x1.25 and a new priority,
``previous=plan``). For each warm solve: whether it stayed on the warm path
(``SolveStats.warm``; a warm solve that falls back to the cold path reports False),
the workloads it re-solved and its warm-preemption candidates. Called by ``bench.run``
(``make bench``), which checks issue #19's engine targets against these figures.
"""

from __future__ import annotations

import argparse
import json
import time

import placement
from placement.decisions import SolveStats
from placement.problem import SolverConfig
from tests.support.meshes import perturb, synthetic_mesh


def _ratio(stats: SolveStats) -> float:
    return stats.placed_priority_demand / stats.bound if stats.bound else 1.0


def warm_figures(prefix: str, stats: SolveStats) -> dict:
    """What a warm solve did: stayed warm or fell back to the cold path, and how much it re-solved."""
    return {
        f"{prefix}_stayed_warm": bool(getattr(stats, "warm", False)),  # False: it fell back to the cold path
        f"{prefix}_resolved_workloads": getattr(stats, "resolved_workloads", 0),
        # newer SolveStats field: read with a default so this runs against either engine
        f"{prefix}_preemption_candidates": getattr(stats, "preemption_candidates", 0),
        f"{prefix}_warm_fallback": getattr(stats, "warm_fallback", ""),  # why it fell back, if it did
    }


def run(workloads: int, sites: int, seed: int = 0, time_limit_s: float | None = None) -> dict:
    # the solver is bounded by deterministic work; the wall-clock limit is only the
    # safety net (the default unless given), reported as wall_limit_hit when reached
    config = SolverConfig(num_workers=2) if time_limit_s is None else SolverConfig(time_limit_s=time_limit_s, num_workers=2)
    mesh = synthetic_mesh(workloads, sites, seed=seed)
    t = time.perf_counter()
    plan = placement.plan(mesh, config)
    solve_s = time.perf_counter() - t
    s = plan.stats
    changed = perturb(mesh)
    t = time.perf_counter()
    cold = placement.plan(changed, config)
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    warm = placement.plan(changed, config, previous=plan)
    warm_s = time.perf_counter() - t
    # one workload changed (demand x1.25, new priority), re-planned from the first plan
    one = perturb(mesh, fraction=1 / workloads)
    single_changed = sum(1 for a, b in zip(mesh.workloads, one.workloads, strict=True) if a != b)
    t = time.perf_counter()
    single = placement.plan(one, config, previous=plan)
    single_s = time.perf_counter() - t
    return {
        "workloads": workloads,
        "sites": sites,
        "candidates": s.num_candidates,
        "status": str(s.status),
        "objective": s.placed_priority_demand,
        "bound": s.bound,
        "ratio_to_bound": s.placed_priority_demand / s.bound if s.bound else 1.0,
        "greedy_objective": s.greedy_placed_priority_demand,
        "greedy_ratio_to_bound": s.greedy_placed_priority_demand / s.bound if s.bound else 1.0,
        "placed_workloads": s.placed_workloads,
        "solve_s": solve_s,
        "kernel_s": s.kernel_ms / 1e3,
        "bound_s": s.bound_ms / 1e3,
        "cpsat_s": s.cpsat_ms / 1e3,
        "time_limit_s": config.time_limit_s,
        "wall_limit_hit": s.wall_limit_hit,
        "cold_s": cold_s,
        "warm_s": warm_s,
        "warm_speedup": cold_s / warm_s if warm_s else float("inf"),
        "cold_ratio_to_bound": _ratio(cold.stats),
        "warm_ratio_to_bound": _ratio(warm.stats),
        # the warm plan against the cold plan's bound of the same changed mesh (a warm bound may be looser)
        "warm_ratio_to_cold_bound": warm.stats.placed_priority_demand / cold.stats.bound if cold.stats.bound else 1.0,
        "warm_status": str(warm.stats.status),
        "warm_fixed_workloads": warm.stats.fixed_workloads,
        **warm_figures("warm", warm.stats),  # warm_stayed_warm, warm_resolved_workloads, ...
        "single_changed_workloads": single_changed,
        "single_s": single_s,
        "single_ratio_to_bound": _ratio(single.stats),
        "single_status": str(single.stats.status),
        **warm_figures("single", single.stats),
        "bound_method": s.bound_method,
        "bound_iterations": s.bound_iterations,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    r = run(a.workloads, a.sites, a.seed, a.time_limit)
    if a.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k:>24}: {v:,.4f}" if isinstance(v, float) else f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
