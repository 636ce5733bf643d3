"""Burst benchmark: a mesh arriving in batches, each batch re-planned from the last plan.

``python -m bench.burst --workloads 10000 [--sites 500] [--steps 1200,2600,...] [--seed 0]
[--json]`` replays, through the engine alone, what the operator does during a burst of
creations (``bench.operator``: the debounced solve loop plans the workloads created so
far, then again with the next ones, ``previous=`` the last plan): the first
``steps[0]`` workloads of ``synthetic_mesh(workloads, sites, seed)`` cold, then the first
``steps[1]``, ``steps[2]``, ... warm. The default steps (as shares of ``--workloads``)
end like the burst of one 10,000-workload operator run of 2026-12-07 (8,866, then
10,000); the operator's batches vary from run to run with the create rate. Per step
it prints (or, with ``--json``, gives as one JSON object):

* the engine's path (``warm``, or why it went cold: ``SolveStats.warm_fallback``), the
  floor repair that ran (``SolveStats.floor_repair``) and how many workloads it re-solved;
* ``moved``: workloads placed by the previous step whose assignments (site, pool,
  devices) differ now, each a status patch (and, with a template, a Deployment moved)
  in the operator; ``placed``; ``seconds``; ``floor_shortfall``.

Not part of ``make bench`` (its figures are quoted in docs/benchmarks.md with this
command): it measures churn, which the operator benchmark shows only mixed with its
create and write times.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

import placement
from placement.problem import Mesh
from tests.support.meshes import synthetic_mesh

# steps as shares of the mesh, ending like one `bench.operator --workloads 10000` burst
DEFAULT_SHARES = (0.12, 0.26, 0.40, 0.55, 0.70, 0.8866, 1.0)


def assignments(plan: placement.Plan) -> dict[str, tuple[tuple[str, str, int], ...]]:
    return {k: tuple(sorted((a.site, a.accelerator_model, a.devices) for a in d.assignments))
            for k, d in plan.workloads.items()}


def run(workloads: int, sites: int, steps: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """One row per step (see the module doc)."""
    full: Mesh = synthetic_mesh(workloads, sites, seed=seed)
    rows: list[dict[str, Any]] = []
    previous: placement.Plan | None = None
    for n in steps:
        mesh = dataclasses.replace(full, workloads=full.workloads[:n])
        started = time.perf_counter()
        plan = placement.plan(mesh, previous=previous)
        seconds = time.perf_counter() - started
        stats = plan.stats
        moved = 0
        if previous is not None:
            before, after = assignments(previous), assignments(plan)
            moved = sum(1 for k, was in before.items() if was and after.get(k) != was)
        rows.append({
            "workloads": n, "seconds": round(seconds, 2), "warm": stats.warm,
            "warm_fallback": stats.warm_fallback, "floor_repair": str(stats.floor_repair),
            "resolved_workloads": stats.resolved_workloads, "floor_repair_workloads": stats.floor_repair_workloads,
            "floor_shortfall": stats.floor_shortfall, "placed": stats.placed_workloads, "moved": moved,
        })
        previous = plan
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=0, help="default: max(20, workloads // 20), as bench.operator")
    parser.add_argument("--steps", default="", help="comma-separated workload counts (default: the operator's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sites = args.sites or max(20, args.workloads // 20)
    steps = ([int(s) for s in args.steps.split(",")] if args.steps
             else [max(1, round(share * args.workloads)) for share in DEFAULT_SHARES])
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)) or steps[-1] > args.workloads:
        parser.error("--steps must increase and stay within --workloads")
    rows = run(args.workloads, sites, steps, args.seed)
    if args.json:
        json.dump({"workloads": args.workloads, "sites": sites, "seed": args.seed, "steps": rows}, sys.stdout)
        print()
        return
    print("| workloads | path | floor repair (re-solved) | re-solved | moved | placed | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        path = "warm" if r["warm"] else f"cold ({r['warm_fallback'] or 'first plan'})"
        repair = f"{r['floor_repair'] or '-'} ({r['floor_repair_workloads']})" if r["floor_repair"] else "-"
        print(f"| {r['workloads']:,} | {path} | {repair} | {r['resolved_workloads']:,} | {r['moved']:,} | "
              f"{r['placed']:,} | {r['seconds']:.2f} |")


if __name__ == "__main__":
    main()
