"""Family benchmark: the engine against its bound, the exact optimum and the baseline.

``python -m bench.families [--json]`` plans, per mesh family of
``tests.support.meshes.FAMILIES`` and per size (50 x 10 and 200 x 30 workloads x sites,
"small"; 1k x 100, "medium"), a few seeds cold with ``SolverConfig(num_workers=2)``, and
reports per family and size:

* the engine's placed priority-weighted demand over its own bound (median, worst) and
  its reported gap;
* over the exact optimum (``bench.exact``, HiGHS; small sizes only): a ratio to the
  **proven** optimum where HiGHS proved it within ``--exact-limit`` seconds, otherwise
  to HiGHS's best plan (the row says how many were proven);
* the gain over the kube-scheduler-style baseline (``bench.baseline``):
  (engine - baseline) / baseline, median and worst, unrounded, and how many meshes
  put the engine below it;
* the cold plan time (median, worst) and the baseline's and HiGHS's times.

Every engine and baseline plan is checked with ``tests.support.invariants.check_plan``
on the way (an invalid plan stops the benchmark). Called by ``bench.run``
(``make bench``; ``--skip-families`` skips it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import placement
from bench.baseline import as_plan, schedule
from bench.exact import solve as exact_solve
from placement.problem import SolverConfig
from tests.support.invariants import check_plan
from tests.support.meshes import FAMILIES, family_mesh

# (workloads, sites, seeds, exact reference?)
SIZES = [(50, 10, 8, True), (200, 30, 4, True), (1000, 100, 2, False)]


def one(family: str, workloads: int, sites: int, seed: int, exact: bool, exact_limit: float) -> dict:
    mesh = family_mesh(family, workloads, sites, seed)
    t = time.perf_counter()
    base = schedule(mesh)
    base_s = time.perf_counter() - t
    check_plan(mesh, as_plan(base.problem, base.assignments))
    t = time.perf_counter()
    plan = placement.plan(mesh, SolverConfig(num_workers=2))
    cold_s = time.perf_counter() - t
    check_plan(mesh, plan)
    s = plan.stats
    b = base.priority_demand()
    row = {
        "family": family, "workloads": workloads, "sites": sites, "seed": seed,
        "engine": s.placed_priority_demand, "bound": s.bound, "gap": s.gap, "status": str(s.status),
        "engine_greedy": s.greedy_placed_priority_demand, "baseline": b, "cold_s": cold_s, "baseline_s": base_s,
        "ratio_to_bound": s.placed_priority_demand / s.bound if s.bound else 1.0,
        "gain_over_baseline": (s.placed_priority_demand - b) / b if b else 0.0,
    }
    if exact:
        r = exact_solve(mesh, time_limit_s=exact_limit, problem=base.problem)
        row.update({"exact": r.objective, "exact_bound": r.bound, "exact_status": r.status, "exact_s": r.seconds,
                    "ratio_to_exact": s.placed_priority_demand / r.objective if r.objective else 1.0,
                    "baseline_ratio_to_exact": b / r.objective if r.objective else 1.0})
    return row


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for family in FAMILIES:
        for w, s, _, _ in SIZES:
            rs = [r for r in rows if r["family"] == family and r["workloads"] == w and r["sites"] == s]
            if not rs:
                continue
            gains = [r["gain_over_baseline"] for r in rs]
            summary = {
                "family": family, "workloads": w, "sites": s, "meshes": len(rs),
                "ratio_to_bound_median": statistics.median(r["ratio_to_bound"] for r in rs),
                "ratio_to_bound_worst": min(r["ratio_to_bound"] for r in rs),
                "gain_median": statistics.median(gains), "gain_worst": min(gains),
                "below_baseline": [r["seed"] for r in rs if r["gain_over_baseline"] < 0],
                "cold_s_median": statistics.median(r["cold_s"] for r in rs), "cold_s_max": max(r["cold_s"] for r in rs),
            }
            if "exact" in rs[0]:
                proven = [r for r in rs if r["exact_status"] == "optimal"]
                summary.update({
                    "exact_proven": len(proven),
                    "ratio_to_optimum_worst": min((r["ratio_to_exact"] for r in proven), default=None),
                    "ratio_to_exact_worst": min(r["ratio_to_exact"] for r in rs),
                    "baseline_ratio_to_exact_worst": min(r["baseline_ratio_to_exact"] for r in rs),
                    "exact_s_max": max(r["exact_s"] for r in rs),
                })
            out.append(summary)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.4f}%"


def _gain(x: float) -> str:
    return f"{x * 100:+.4f}%"


def table(summary: list[dict]) -> str:
    rows = [
        "| family | size | meshes | plan / bound (median / worst) | plan / optimum (worst; proven) | "
        "baseline / optimum (worst) | gain over baseline (median / worst) | below baseline (seeds) | "
        "cold s (median / max) | HiGHS s (max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        if "exact_proven" in r:
            opt = (f'{_pct(r["ratio_to_optimum_worst"])} ({r["exact_proven"]}/{r["meshes"]} proven'
                   + (f'; {_pct(r["ratio_to_exact_worst"])} of HiGHS\'s best incl. unproven)'
                      if r["exact_proven"] < r["meshes"] else ")"))
            base_opt, exact_s = _pct(r["baseline_ratio_to_exact_worst"]), f'{r["exact_s_max"]:.1f}'
        else:
            opt, base_opt, exact_s = "-", "-", "-"
        below = ", ".join(str(s) for s in r["below_baseline"]) or "none"
        rows.append(
            f'| {r["family"]} | {r["workloads"]} x {r["sites"]} | {r["meshes"]} | '
            f'{_pct(r["ratio_to_bound_median"])} / {_pct(r["ratio_to_bound_worst"])} | {opt} | {base_opt} | '
            f'{_gain(r["gain_median"])} / {_gain(r["gain_worst"])} | {below} | '
            f'{r["cold_s_median"]:.1f} / {r["cold_s_max"]:.1f} | {exact_s} |'
        )
    return "\n".join(rows)


def run(sizes: list[tuple[int, int, int, bool]] = SIZES, families: tuple[str, ...] = FAMILIES,
        exact_limit: float = 20.0) -> dict:
    rows = []
    for w, s, seeds, exact in sizes:
        for family in families:
            for seed in range(seeds):
                print(f"families: {family} {w} x {s} seed {seed} ...", file=sys.stderr, flush=True)
                rows.append(one(family, w, s, seed, exact, exact_limit))
    return {"rows": rows, "summary": summarise(rows), "exact_limit_s": exact_limit}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--exact-limit", type=float, default=20.0, help="HiGHS time limit per mesh (s)")
    ap.add_argument("--seeds-scale", type=float, default=1.0, help="multiply the seeds per size")
    ap.add_argument("--json", action="store_true", help="print one JSON object (rows and summary)")
    a = ap.parse_args(argv)
    sizes = [(w, s, max(1, int(round(n * a.seeds_scale))), e) for w, s, n, e in SIZES]
    result = run(sizes, tuple(a.families.split(",")), a.exact_limit)
    print(json.dumps(result) if a.json else table(result["summary"]))


if __name__ == "__main__":
    main()
