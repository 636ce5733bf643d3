"""Scale benchmark: one large mesh cold, then a warm re-solve after 1% of it changes.

``python -m bench.scale --workloads 50000 --sites 5000 [--seed 0] [--json]`` prints one
JSON object (``--json``; otherwise the markdown table of :func:`table`) with:

* ``synthetic_mesh(workloads, sites, seed)`` (mostly edge fleets, about 10% factories)
  and the time to build it (``mesh_s``, not counted in the plan time);
* a cold ``placement.plan(mesh, SolverConfig(num_workers=2))``: wall time (``cold_s``),
  placed priority-weighted demand over the plan's own bound (``ratio_to_bound``), its
  status, ``stop_reason``, ``bound_method``, ``partitions`` (``stop_reason`` and
  ``partitions`` are ``""`` / 0 on an engine that does not report them), placed
  workloads, kernel / bound / CP-SAT milliseconds and whether the wall-clock safety net
  stopped it (``wall_limit_hit``);
* ``tests.support.meshes.perturb`` (1% of the workloads change demand and priority)
  and a warm re-solve with ``previous=`` the cold plan: its time, ratio to its bound and
  statistics; with ``--cold-changed`` also a cold plan of the changed mesh (the warm
  re-solve's speedup over it); ``warm`` in each solve's figures is ``SolveStats.warm``:
  False on the warm re-solve means it fell back to the cold path (the table says so);
* the process's peak RSS (``ru_maxrss``) after the engine's plans, in MiB: the engine's
  peak only when this runs as its own process (the command line, as ``bench.run`` does);
  under :func:`run` called in-process it is the caller's peak so far;
* each of issue #11's scale targets (cold <= 60 s, >= 98% of the bound, <= 8 GiB peak,
  warm <= 6 s) as met or missed (``targets``).

Every plan is checked with ``tests.support.invariants.check_plan`` (``check_s``): it is
linear in the placed workloads, 0.07 s on the engine's plan at 10k x 1000 and 0.4 s on
the baseline's plan at 50k x 5k (36,763 placed), so it is on by default (``--no-check``
skips it).

``--baseline`` also runs the kube-scheduler-style baseline (``bench.baseline.schedule``)
and reports the engine's gain over it. It is off by default because it is too slow at
this size: it is pure Python over every workload x site column pair, 1.8 s at 5k x 500,
7.6 s at 10k x 1000 and, measured once at 50k x 5k on the 2-core bench machine, 405 s
(580 MiB). It runs after the peak RSS is read, so its memory does not count as the
engine's.

Called by ``bench.run`` (``make bench``; ``--skip-scale`` skips it) at 50,000 x 5,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import placement
from placement.decisions import SolveStats
from placement.problem import SolverConfig
from tests.support.invariants import check_plan
from tests.support.meshes import perturb, synthetic_mesh

# issue #11's scale targets (50,000 workloads x 5,000 sites)
COLD_TARGET_S = 60.0
RATIO_TARGET = 0.98
RSS_TARGET_MIB = 8 * 1024.0
WARM_TARGET_S = 6.0
CHANGED_FRACTION = 0.01  # perturb's default: "1% of workloads change"


def peak_rss_mib() -> float:
    """This process's peak resident set so far (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ratio(stats: SolveStats) -> float:
    return stats.placed_priority_demand / stats.bound if stats.bound else 1.0


def _stats(stats: SolveStats) -> dict[str, Any]:
    """The figures of one solve that the scale table and a reader of the JSON need."""
    return {
        "status": str(stats.status),
        # newer SolveStats fields: read with defaults so this runs against either engine
        "stop_reason": getattr(stats, "stop_reason", ""),
        "bound_method": getattr(stats, "bound_method", ""),
        "partitions": getattr(stats, "partitions", 0),
        "objective": stats.placed_priority_demand,
        "bound": stats.bound,
        "gap": stats.gap,
        "ratio_to_bound": _ratio(stats),
        "greedy_ratio_to_bound": stats.greedy_placed_priority_demand / stats.bound if stats.bound else 1.0,
        "placed_workloads": stats.placed_workloads,
        "num_workloads": stats.num_workloads,
        "candidates": stats.num_candidates,
        "wall_ms": stats.wall_ms,
        "kernel_ms": stats.kernel_ms,
        "bound_ms": stats.bound_ms,
        "cpsat_ms": stats.cpsat_ms,
        "wall_limit_hit": stats.wall_limit_hit,
        "fallback_used": stats.fallback_used,
        # True: an incremental re-solve; a warm re-solve that fell back to the cold path says False
        "warm": bool(getattr(stats, "warm", False)),
        "fixed_workloads": stats.fixed_workloads,
        "resolved_workloads": stats.resolved_workloads,
        "preemption_candidates": getattr(stats, "preemption_candidates", 0),
        "warm_fallback": getattr(stats, "warm_fallback", ""),  # why a warm re-solve fell back, if it did
    }


def targets(r: dict[str, Any]) -> dict[str, bool]:
    """Each scale target, met (True) or missed (False), from a :func:`run` result."""
    return {
        "cold_within_60_s": r["cold_s"] <= COLD_TARGET_S,
        "ratio_at_least_98_pct": r["cold"]["ratio_to_bound"] >= RATIO_TARGET,
        "peak_rss_within_8_gib": r["peak_rss_mib"] <= RSS_TARGET_MIB,
        "warm_within_6_s": r["warm_s"] <= WARM_TARGET_S,
    }


def run(workloads: int, sites: int, seed: int = 0, cold_changed: bool = False, baseline: bool = False,
        check: bool = True) -> dict[str, Any]:
    """The scale benchmark as one dict (see the module docstring for its figures)."""
    config = SolverConfig(num_workers=2)
    t = time.perf_counter()
    mesh = synthetic_mesh(workloads, sites, seed=seed)
    mesh_s = time.perf_counter() - t
    rss_mesh = peak_rss_mib()

    t = time.perf_counter()
    plan = placement.plan(mesh, config)
    cold_s = time.perf_counter() - t

    changed = perturb(mesh, fraction=CHANGED_FRACTION)
    changed_workloads = sum(1 for a, b in zip(mesh.workloads, changed.workloads, strict=True) if a != b)
    t = time.perf_counter()
    warm = placement.plan(changed, config, previous=plan)
    warm_s = time.perf_counter() - t

    result: dict[str, Any] = {
        "workloads": workloads, "sites": sites, "seed": seed,
        "factories": len(mesh.factories), "fleets": len(mesh.fleets),
        "time_limit_s": config.time_limit_s, "num_workers": config.num_workers,
        "mesh_s": mesh_s, "cold_s": cold_s, "cold": _stats(plan.stats),
        "changed_workloads": changed_workloads, "warm_s": warm_s, "warm": _stats(warm.stats),
    }
    if cold_changed:
        t = time.perf_counter()
        cold2 = placement.plan(changed, config)
        result["cold_changed_s"] = time.perf_counter() - t
        result["cold_changed"] = _stats(cold2.stats)
        result["warm_speedup"] = result["cold_changed_s"] / warm_s if warm_s else float("inf")
    # read before the checks and the baseline: the peak of the mesh and the engine's plans
    result["peak_rss_after_mesh_mib"] = rss_mesh
    result["peak_rss_mib"] = peak_rss_mib()

    if check:
        t = time.perf_counter()
        check_plan(mesh, plan)  # raises AssertionError on the first broken rule
        check_plan(changed, warm)
        if cold_changed:
            check_plan(changed, cold2)
        result["check_s"] = time.perf_counter() - t
    result["checked"] = check

    if baseline:
        from bench.baseline import as_plan, schedule

        t = time.perf_counter()
        base = schedule(mesh)
        result["baseline_s"] = time.perf_counter() - t
        b = base.priority_demand()
        if check:
            check_plan(mesh, as_plan(base.problem, base.assignments))
        result["baseline"] = b
        result["baseline_placed_workloads"] = base.placed
        e = plan.stats.placed_priority_demand
        result["gain_over_baseline"] = (e - b) / b if b else 0.0
    result["targets"] = targets(result)
    return result


def table(r: dict[str, Any]) -> str:
    """The result as a markdown table, each issue #11 target met or missed with its figure."""
    t = targets(r)  # recomputed, so a stored result from before "targets" existed renders too

    def met(key: str) -> str:
        return "yes" if t[key] else "**no**"

    c, w = r["cold"], r["warm"]
    def status(x: dict[str, Any]) -> str:
        return x["status"] + (f' ({x["stop_reason"]})' if x["stop_reason"] else "")

    cold_detail = (f'status {status(c)}; bound: {c["bound_method"] or "-"}; {c["partitions"]} partitions; '
                   f'{c["placed_workloads"]:,} of {c["num_workloads"]:,} workloads placed; kernel '
                   f'{c["kernel_ms"] / 1e3:.1f} s, bound {c["bound_ms"] / 1e3:.1f} s, CP-SAT {c["cpsat_ms"] / 1e3:.1f} s'
                   + ("; **wall-clock limit hit**" if c["wall_limit_hit"] else ""))
    path = {True: "stayed warm", False: "**fell back to cold**", None: "warm path not recorded"}[w.get("warm")]
    warm_detail = (f'{r["changed_workloads"]:,} workloads changed; {path}; status {status(w)}; '
                   f'{w["resolved_workloads"]:,} re-solved, {w["fixed_workloads"]:,} kept, '
                   f'{w.get("preemption_candidates", 0):,} preemption candidates'
                   + (f'; cold re-plan {r["cold_changed_s"]:.1f} s' if "cold_changed_s" in r else "")
                   + ("; **wall-clock limit hit**" if w["wall_limit_hit"] else ""))
    rows = [
        f'`python -m bench.scale --workloads {r["workloads"]} --sites {r["sites"]} --seed {r["seed"]} --json`: '
        f'{r["factories"]:,} factories and {r["fleets"]:,} fleets, mesh built in {r["mesh_s"]:.1f} s (not counted).',
        "",
        "| measure | value | target | met? |",
        "|---|---|---|---|",
        f'| cold plan | {r["cold_s"]:.1f} s: {cold_detail} | <= {COLD_TARGET_S:g} s | {met("cold_within_60_s")} |',
        f'| cold plan / its bound | {c["ratio_to_bound"] * 100:.4f}% (gap {c["gap"] * 100:.4f}%; greedy '
        f'{c["greedy_ratio_to_bound"] * 100:.4f}%) | >= {RATIO_TARGET:.0%} | {met("ratio_at_least_98_pct")} |',
        f'| peak RSS (mesh and plans) | {r["peak_rss_mib"]:,.0f} MiB ({r["peak_rss_after_mesh_mib"]:,.0f} MiB after '
        f'building the mesh) | <= {RSS_TARGET_MIB / 1024:g} GiB | {met("peak_rss_within_8_gib")} |',
        f'| warm re-solve, {CHANGED_FRACTION:.0%} changed | {r["warm_s"]:.1f} s: {warm_detail} | '
        f'<= {WARM_TARGET_S:g} s | {met("warm_within_6_s")} |',
        f'| warm plan / its bound | {w["ratio_to_bound"] * 100:.4f}% | - | - |',
    ]
    if "gain_over_baseline" in r:
        rows.append(f'| gain over the kube-scheduler-style baseline | {r["gain_over_baseline"] * 100:+.4f}% '
                    f'(baseline {r["baseline_s"]:.1f} s) | - | - |')
    if r.get("checked"):
        rows.append(f'| every plan checked (check_plan) | {r.get("check_s", 0.0):.1f} s | - | - |')
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--workloads", type=int, default=50_000)
    ap.add_argument("--sites", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold-changed", action="store_true",
                    help="also plan the changed mesh cold (the warm re-solve's speedup)")
    ap.add_argument("--baseline", action="store_true",
                    help="also run the kube-scheduler-style baseline (slow at 50k x 5k) and report the gain over it")
    ap.add_argument("--no-check", action="store_true", help="skip check_plan on the plans")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    print(f"scale: {a.workloads} x {a.sites} seed {a.seed} ...", file=sys.stderr, flush=True)
    r = run(a.workloads, a.sites, a.seed, cold_changed=a.cold_changed, baseline=a.baseline, check=not a.no_check)
    print(json.dumps(r) if a.json else table(r))


if __name__ == "__main__":
    main()
