"""Solver benchmark: the plan against its own bound and against the engine's
kube-scheduler-order greedy.

``python -m bench.solver --workloads W --sites S --json`` prints one JSON object:
objective (placed priority-weighted demand), bound (the plan's Lagrangian bound over
ALL feasible pairs), ratios to the bound for the plan and for the greedy (one workload
at a time, priority order, filter-and-score over all sites), solve time, whether the
wall-clock safety limit was hit (then the plan depends on the machine), and a warm
re-solve after 1% of workloads change (``previous=plan``) against a cold solve of the
same changed mesh. Called by ``bench.run`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import time

import placement
from placement.problem import SolverConfig
from tests.support.meshes import perturb, synthetic_mesh


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
    return {
        "workloads": workloads,
        "sites": sites,
        "candidates": s.num_candidates,
        "status": str(s.status),
        "objective": s.objective,
        "bound": s.bound,
        "ratio_to_bound": s.objective / s.bound if s.bound else 1.0,
        "greedy_objective": s.greedy_objective,
        "greedy_ratio_to_bound": s.greedy_objective / s.bound if s.bound else 1.0,
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
        "cold_ratio_to_bound": cold.stats.objective / cold.stats.bound if cold.stats.bound else 1.0,
        "warm_ratio_to_bound": warm.stats.objective / warm.stats.bound if warm.stats.bound else 1.0,
        "warm_status": str(warm.stats.status),
        "warm_fixed_workloads": warm.stats.fixed_workloads,
        "warm_resolved_workloads": warm.stats.resolved_workloads,
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
