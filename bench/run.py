"""``make bench``: kernel and solver benchmarks at 1k x 100, 5k x 500, 10k x 1000.

Runs ``bench.kernel`` and ``bench.solver`` at each size (each in this process, one
after the other), writes ``bench/results.json``, draws ``docs/benchmarks.png`` (time
and ratio to the plan's bound against size) and rewrites the results table in
``docs/benchmarks.md`` between its BEGIN/END markers, stating the machine.

Then runs ``bench.operator`` (one real operator process against the e2e test control
plane) at ``--operator-workloads`` (1,000), stores its JSON under ``"operator"`` in
``bench/results.json`` and rewrites the table between the BEGIN/END OPERATOR RESULTS
markers; ``--skip-operator`` skips it (the previous ``"operator"`` result is kept).
Then ``bench.delivery`` (a hub and two member clusters) at the same size, once per
backend: ``direct`` under ``"delivery"`` and its markers, ``ocm`` (through Open Cluster
Management) under ``"delivery_ocm"`` and its own markers; ``--skip-delivery`` skips both.

Between the two, ``bench.families`` (the engine against its bound, the exact HiGHS
optimum and the kube-scheduler-style baseline on every mesh family at 50 x 10, 200 x 30
and 1k x 100) stores its JSON under ``"families"`` and rewrites the table between the
BEGIN/END FAMILY RESULTS markers; ``--skip-families`` skips it (the previous result is
kept).

After the families, ``bench.scale`` (one cold plan at ``--scale-size``, 50,000 x 5,000,
and a warm re-solve after 1% of the workloads change, in its own process so its peak
RSS is the engine's) stores its JSON under ``"scale"`` and, when ``docs/benchmarks.md``
has BEGIN/END SCALE RESULTS markers, rewrites the table between them (each of issue
#11's scale targets met or missed); the table is printed either way. A failed scale run
(killed for memory, say) is stored and shown as failed rather than losing the other
results. ``--skip-scale`` skips it (the previous ``"scale"`` result is kept).

After the 1,000-workload operator run, ``bench.operator`` runs again at
``--operator-large-workloads`` (10,000; 0 skips it, so does ``--skip-operator-large``
and ``--skip-operator``) and stores its JSON under ``"operator_10k"``; a failed run is
stored and shown as failed, like the scale run (the previous result is kept when
skipped).

Last, ``bench.timeline`` (a day of grid events planned ahead at 1,000 x 50, the instants
ahead planned greedily and with CP-SAT, side by side) stores its JSON under
``"timeline"`` and rewrites the table between the BEGIN/END TIMELINE RESULTS markers;
``--skip-timeline`` skips it (the previous result is kept).

Every run ends with issue #19's targets (:func:`target_rows`), each met or missed with
its measured figure, computed from ``bench/results.json`` as this run leaves it (a
skipped part counts with its last result): printed, stored under ``"targets"`` and
written between the BEGIN/END ENGINE TARGETS markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(1000, 100), (5000, 500), (10000, 1000)]
SCALE_SIZE = (50_000, 5_000)  # issue #11's scale target
# the engine's wall-clock safety net is 300 s a plan; three plans, the mesh and the checks fit well within
SCALE_TIMEOUT_S = 1800.0
# bench.operator at 10,000 takes about 10 min; its own waits give up after 300 s each
OPERATOR_LARGE_TIMEOUT_S = 3600.0

# ---- issue #19's targets (measured by make bench side by side, never by timed tests)
OP_PLACED_S = 5.0  # 1,000 workloads: first create -> all placed
OP_P50_S, OP_P99_S = 0.5, 2.0  # 1,000: change -> status
OP_PATCHES_PER_CHANGED = 1.0  # 1,000: status patches per changed object
OP_LARGE_PLACED_AFTER_LAST_S = 60.0  # 10,000: last create -> all placed
OP_LARGE_P99_S = 5.0  # 10,000: change -> status p99
OP_LARGE_RSS_MIB = 1536.0  # 10,000: operator peak RSS (VmHWM), 1.5 GiB
WARM_SPEEDUP = 10.0  # warm re-solve after a 1% change against a cold solve of the changed mesh
WARM_SPEEDUP_SIZES = [(5000, 500), (10000, 1000)]
# "at the same ratio to the bound": warm objective / warm bound at most this far below cold / cold bound
WARM_RATIO_TOLERANCE = 0.001  # 0.1 percentage point
SINGLE_SIZE, SINGLE_S = (10000, 1000), 0.5  # one changed workload re-planned
# cold plan time and today's plan quality (percent of the bound, to two decimals) per size
COLD_TARGETS = {(5000, 500): (5.0, 99.78), (10000, 1000): (15.0, 99.27)}
SCALE_WARM_S = 6.0  # 50k x 5k warm re-solve, without falling back to cold
OPTIMUM_RATIO = 0.999  # of the optimum HiGHS proves, on every mesh up to 200 x 30
OPTIMUM_MAX_SIZE = (200, 30)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores, {cpu}{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def run_json(module: str, w: int, s: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", module, "--workloads", str(w), "--sites", str(s), "--json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [r["kernel"]["pairs"] for r in results]
    labels = [f'{r["workloads"] // 1000}k x {r["sites"]}' for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(pairs, [r["kernel"]["cython_s"] for r in results], "o-", label="kernel (Cython)")
    a.loglog(pairs, [r["solver"]["solve_s"] for r in results], "s-", label="full plan")
    a.loglog(pairs, [r["solver"]["bound_s"] for r in results], "^-", label="bound (Lagrangian, all pairs)")
    a.loglog(pairs, [r["solver"]["warm_s"] for r in results], "v-", label="warm re-solve (1% changed)")
    a.set_xlabel("workload x site-column pairs")
    a.set_ylabel("seconds")
    a.legend()
    a.set_title("time against size")
    b.plot(labels, [r["solver"]["ratio_to_bound"] for r in results], "o-", label="CP-SAT plan")
    b.plot(labels, [r["solver"]["greedy_ratio_to_bound"] for r in results], "s-", label="greedy (kube way)")
    b.plot(labels, [r["solver"]["warm_ratio_to_bound"] for r in results], "^-", label="warm re-solve")
    b.set_ylabel("placed priority-weighted demand / bound")
    b.set_title("ratio to bound")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(results: list[dict], mach: str) -> str:
    def path(solver: dict, key: str) -> str:
        return {True: "warm", False: "**cold**", None: "-"}[solver.get(key)]

    rows = [
        f"Machine: {mach}.",
        "",
        "| size | pairs | Cython pairs/s (best / median) | x NumPy | x Python | of bandwidth bound (best / median) | load avg | plan / bound | greedy / bound | solve s | bound s | cold s | warm s | warm speedup | warm / bound | 1 changed s | path (1% / 1 changed) | status | wall limit hit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        k, s = r["kernel"], r["solver"]
        single = f'{s["single_s"]:.2f}' if "single_s" in s else "-"
        rows.append(
            f'| {r["workloads"]} x {r["sites"]} | {k["pairs"]:,} | {k["cython_pairs_per_s"]:.3g} / '
            f'{k["cython_median_pairs_per_s"]:.3g} | '
            f'{k["speedup_vs_numpy"]:.1f} | {k["speedup_vs_python"]:.0f} | {k["fraction_of_bound"]:.0%} / '
            f'{k["median_fraction_of_bound"]:.0%} | {k["load_average_before"]:.1f} | '
            f'{s["ratio_to_bound"]:.4f} | {s["greedy_ratio_to_bound"]:.4f} | {s["solve_s"]:.1f} | '
            f'{s["bound_s"]:.2f} | {s["cold_s"]:.1f} | {s["warm_s"]:.1f} | {s["warm_speedup"]:.2f} | '
            f'{s["warm_ratio_to_bound"]:.4f} | {single} | {path(s, "warm_stayed_warm")} / '
            f'{path(s, "single_stayed_warm")} | {s["status"]} | {"yes" if s["wall_limit_hit"] else "no"} |'
        )
    return "\n".join(rows)


def run_families() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.families", "--json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,  # progress (stderr) stays on the terminal
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_scale(workloads: int, sites: int) -> dict:
    """``bench.scale`` in its own process (its ``ru_maxrss`` is then the engine's peak).

    A failure is returned as ``{"failed": why}`` instead of raised: it comes after the
    families, which took long, and a scale run that runs out of memory is a result too.
    """
    cmd = [sys.executable, "-m", "bench.scale", "--workloads", str(workloads), "--sites", str(sites), "--json"]
    try:
        out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,  # progress on the terminal
                             timeout=SCALE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"workloads": workloads, "sites": sites, "failed": f"no result within {SCALE_TIMEOUT_S:g} s"}
    except subprocess.CalledProcessError as e:
        why = f"exit status {e.returncode}"
        if e.returncode == -9:
            why += " (killed: SIGKILL, as the kernel's out-of-memory killer does)"
        return {"workloads": workloads, "sites": sites, "failed": why}
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_table(r: dict) -> str:
    if "failed" in r:
        return (f'`python -m bench.scale --workloads {r["workloads"]} --sites {r["sites"]} --json` failed: '
                f'{r["failed"]}. Every scale target (cold <= 60 s, >= 98% of the bound, <= 8 GiB, warm <= 6 s) '
                "is **missed**.")
    from bench.scale import table

    return table(r)


def run_operator(workloads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.operator", "--workloads", str(workloads), "--json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,  # progress (stderr) stays on the terminal
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_operator_large(workloads: int) -> dict:
    """``bench.operator`` at ``workloads`` (10,000); a failure is returned as ``{"failed": why}``
    instead of raised, like :func:`run_scale`: it comes late in a long run."""
    cmd = [sys.executable, "-m", "bench.operator", "--workloads", str(workloads), "--json"]
    try:
        out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,  # progress on the terminal
                             timeout=OPERATOR_LARGE_TIMEOUT_S)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"workloads": workloads, "failed": f"no result within {OPERATOR_LARGE_TIMEOUT_S:g} s"}
    except subprocess.CalledProcessError as e:
        why = f"exit status {e.returncode}"
        if e.returncode == -9:
            why += " (killed: SIGKILL, as the kernel's out-of-memory killer does)"
        return {"workloads": workloads, "failed": why}
    except (ValueError, IndexError) as e:  # no JSON line on stdout
        return {"workloads": workloads, "failed": f"no JSON result ({e})"}


def _at_most(value: float | None, limit: float) -> bool | None:
    """``value <= limit``; None when the figure was not reached (None)."""
    return None if value is None else value <= limit


def _one_write_per_change(r: dict) -> bool | None:
    """At most one status patch per change and no object written more often than it
    changed; None when not measured. Counted per change, not per changed object: the
    stream picks objects at random, and one it changes twice needs two writes (100
    changes of 98 objects give 1.02 per changed object with no extra write at all)."""
    extra, per_change = r.get("changed_objects_with_extra_patches"), r.get("status_patches_per_change")
    if extra is None or per_change is None:
        return None
    return extra == 0 and per_change <= OP_PATCHES_PER_CHANGED


def operator_targets(r: dict) -> dict[str, bool | None]:
    """Issue #19's targets at 1,000 workloads, met (True), missed (False) or not reached (None)."""
    return {
        "all_placed_within_5_s": _at_most(r.get("seconds_to_all_placed"), OP_PLACED_S),
        "p50_change_to_status_within_0_5_s": _at_most(r.get("p50_change_to_status_s"), OP_P50_S),
        "p99_change_to_status_within_2_s": _at_most(r.get("p99_change_to_status_s"), OP_P99_S),
        "at_most_1_patch_per_changed_object": _one_write_per_change(r),
        "zero_noop_writes": None if r.get("noop_writes") is None else r["noop_writes"] == 0,
    }


def after_last_create_s(r: dict) -> float | None:
    """Last create -> all placed: ``seconds_to_all_placed`` runs from the first create request
    and ``create_s`` from the same instant until the last create request returned, so the
    difference is from the last create's response (its request left one create's latency
    earlier, ~10 ms at 4 threads); None when not every workload was placed."""
    placed, created = r.get("seconds_to_all_placed"), r.get("create_s")
    return None if placed is None or created is None else round(placed - created, 2)


def operator_table(r: dict) -> str:
    def fmt(value, unit="") -> str:
        return "not reached" if value is None else f"{value}{unit}"

    t = operator_targets(r)

    def hit(*keys: str) -> str:
        values = [t[k] for k in keys]
        return "yes" if all(values) else "**no** (not reached)" if None in values else "**no**"

    detail = r.get("noop_writes_detail", {})
    return "\n".join([
        f'`python -m bench.operator --workloads {r["workloads"]} --json`: {r["workloads"]} workloads on '
        f'{r["sites"]} sites, started {r.get("started_utc", "?")}, 1-minute load average '
        f'{r["load_average_before"]} before, {r["load_average_burst"]} after the burst, '
        f'{r["load_average_after"]} at the end. Targets: issue #19\'s, stated for 1,000 workloads.',
        "",
        "| measure | value | target | met? |",
        "|---|---|---|---|",
        f'| first create -> all placed | {fmt(r["seconds_to_all_placed"], " s")} (creating took {r["create_s"]} s; '
        f'{r["solves_per_burst"]} solves) | <= {OP_PLACED_S:g} s | {hit("all_placed_within_5_s")} |',
        f'| change -> status p50 / p99 | {fmt(r["p50_change_to_status_s"], " s")} / '
        f'{fmt(r["p99_change_to_status_s"], " s")} ({r["changes"]} priority patches at '
        f'{r["change_rate_achieved_per_s"]}/s) | p50 <= {OP_P50_S:g} s, p99 <= {OP_P99_S:g} s | '
        f'{hit("p50_change_to_status_within_0_5_s", "p99_change_to_status_within_2_s")} |',
        f'| status patches per changed object | {r["status_patches_per_changed_object"]} '
        f'({r.get("status_patches_per_change")} per change; '
        f'{r["changed_objects_with_extra_patches"]} of {r["changed_objects"]} written more often than changed; '
        f'{r["status_patches_of_unchanged_objects"]} patches of unchanged objects) | <= {OP_PATCHES_PER_CHANGED:g} | '
        f'{hit("at_most_1_patch_per_changed_object")} |',
        f'| status patches per created object (burst) | {r["status_patches_per_created_object"]} | 1 | '
        f'{"yes" if r["max_status_patches_of_a_created_object"] <= 1 else "**no**"} |',
        f'| no-op writes in {detail.get("operator_solves", 0)} solves of a quiet 5 s | {r["noop_writes"]} | 0 | '
        f'{hit("zero_noop_writes")} |',
        f'| operator peak RSS (VmHWM) | {r["rss_mb"]} MB | - | - |',
    ])


# --------------------------------------------------------------------------- issue #19's targets


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _solver_at(stored: dict, size: tuple[int, int]) -> dict | None:
    for r in stored.get("results") or []:
        if (r.get("workloads"), r.get("sites")) == size:
            return r.get("solver")
    return None


def _stayed(value: bool | None, why: str | None = None) -> str:
    if value is False and why:
        return f"**fell back to cold** ({why})"
    return {True: "stayed warm", False: "**fell back to cold**", None: "warm path not recorded"}[value]


def _warm_detail(stayed: bool | None, resolved: int | None, candidates: int | None, why: str | None = None) -> str:
    """Whether a warm solve stayed warm (if not, why: ``SolveStats.warm_fallback``), the
    workloads it re-solved and its preemption candidates (a figure an older result does
    not have reads "?")."""
    def n(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    return f"{_stayed(stayed, why)}, {n(resolved)} re-solved, {n(candidates)} preemption candidates"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]:,} x {size[1]:,}"


def _operator_rows(r: dict | None, large: bool) -> list[dict]:
    n = (r or {}).get("workloads", 10_000 if large else 1_000)
    area = f"operator, {n:,} workloads"
    if large:
        targets = [f"all placed <= {OP_LARGE_PLACED_AFTER_LAST_S:g} s after the last create",
                   f"p99 change -> status <= {OP_LARGE_P99_S:g} s",
                   f"peak RSS <= 1.5 GiB ({OP_LARGE_RSS_MIB:,.0f} MiB)"]
    else:
        targets = [f"first create -> all placed <= {OP_PLACED_S:g} s", f"p50 change -> status <= {OP_P50_S:g} s",
                   f"p99 change -> status <= {OP_P99_S:g} s",
                   f"<= {OP_PATCHES_PER_CHANGED:.1f} status patch per changed object", "0 no-op writes"]
    if r is None:
        return [{"area": area, "target": t, "measured": "not measured", "met": None} for t in targets]
    if "failed" in r:
        return [{"area": area, "target": t, "measured": f"run failed: {r['failed']}", "met": False} for t in targets]

    def secs(value: float | None) -> str:
        return "not reached" if value is None else f"{value} s"

    def met(value: bool | None) -> bool:
        return bool(value)  # not reached is missed

    p50, p99 = r.get("p50_change_to_status_s"), r.get("p99_change_to_status_s")
    changes = f'{r.get("changes_solved", "?")} of {r.get("changes", "?")} changes seen solved'
    if large:
        after = after_last_create_s(r)
        rss = r.get("rss_mb")
        placed = (f'{secs(after)} (first create -> all placed {secs(r.get("seconds_to_all_placed"))}, '
                  f'creating took {r.get("create_s")} s)' if after is not None else
                  f'not reached: {r.get("solved_after_burst", "?")} of {n:,} solved within the benchmark\'s wait')
        return [
            {"area": area, "target": targets[0], "measured": placed,
             "met": met(_at_most(after, OP_LARGE_PLACED_AFTER_LAST_S))},
            {"area": area, "target": targets[1], "measured": f"{secs(p99)} (p50 {secs(p50)}; {changes})",
             "met": met(_at_most(p99, OP_LARGE_P99_S))},
            {"area": area, "target": targets[2],
             "measured": "not read" if rss is None else f"{rss:,} MiB (VmHWM; {r.get('rss_mb_end')} MiB at the end)",
             "met": met(_at_most(rss, OP_LARGE_RSS_MIB))},
        ]
    t = operator_targets(r)
    placed_s = r.get("seconds_to_all_placed")
    return [
        {"area": area, "target": targets[0],
         "measured": (f'{secs(placed_s)} (creating took {r.get("create_s")} s; {r.get("solves_per_burst")} solves)'
                      if placed_s is not None else
                      f'not reached: {r.get("solved_after_burst", "?")} of {n:,} solved within the benchmark\'s wait'),
         "met": met(t["all_placed_within_5_s"])},
        {"area": area, "target": targets[1], "measured": f"{secs(p50)} ({changes})",
         "met": met(t["p50_change_to_status_within_0_5_s"])},
        {"area": area, "target": targets[2], "measured": f"{secs(p99)} (max {secs(r.get('max_change_to_status_s'))})",
         "met": met(t["p99_change_to_status_within_2_s"])},
        {"area": area, "target": targets[3],
         "measured": (f'{r.get("status_patches_per_change")} per change, {r.get("status_patches_per_changed_object")} '
                      f'per changed object ({r.get("changes")} changes of {r.get("changed_objects")} objects; '
                      f'{r.get("changed_objects_with_extra_patches")} written more often than changed)'),
         "met": met(t["at_most_1_patch_per_changed_object"])},
        {"area": area, "target": targets[4],
         "measured": (f'{r.get("noop_writes")} in a quiet 5 s ({(r.get("noop_writes_detail") or {}).get("operator_solves", 0)} '
                      "solves)"),
         "met": met(t["zero_noop_writes"])},
    ]


def _engine_rows(stored: dict) -> list[dict]:
    rows = []
    area = "engine"
    for size in WARM_SPEEDUP_SIZES:
        target = (f"{_size(size)}: warm re-solve after a 1% change >= {WARM_SPEEDUP:g}x faster than cold, "
                  f"at the same ratio to the bound (within {WARM_RATIO_TOLERANCE * 100:g} pp)")
        s = _solver_at(stored, size)
        if s is None:
            rows.append({"area": area, "target": target, "measured": "not measured", "met": None})
            continue
        warm_r, cold_r = s["warm_ratio_to_bound"], s["cold_ratio_to_bound"]
        rows.append({"area": area, "target": target, "met": s["warm_speedup"] >= WARM_SPEEDUP
                     and warm_r >= cold_r - WARM_RATIO_TOLERANCE,
                     "measured": (f'{s["warm_speedup"]:.1f}x (warm {s["warm_s"]:.1f} s, cold {s["cold_s"]:.1f} s '
                                  f'of the changed mesh); warm / bound {_pct(warm_r)}, cold / bound {_pct(cold_r)}'
                                  + (f' (warm plan / cold plan\'s bound {_pct(s["warm_ratio_to_cold_bound"])})'
                                     if "warm_ratio_to_cold_bound" in s else "") + "; "
                                  + _warm_detail(s.get("warm_stayed_warm"), s.get("warm_resolved_workloads"),
                                                 s.get("warm_preemption_candidates"), s.get("warm_warm_fallback")))})
    target = f"{_size(SINGLE_SIZE)}: a single changed workload re-planned in <= {SINGLE_S:g} s"
    s = _solver_at(stored, SINGLE_SIZE)
    if s is None or "single_s" not in s:
        rows.append({"area": area, "target": target, "met": None,
                     "measured": "not measured" + ("" if s is None else " (a result from before bench.solver did)")})
    else:
        rows.append({"area": area, "target": target, "met": s["single_s"] <= SINGLE_S,
                     "measured": (f'{s["single_s"]:.2f} s; '
                                  + _warm_detail(s.get("single_stayed_warm"), s.get("single_resolved_workloads"),
                                                 s.get("single_preemption_candidates"), s.get("single_warm_fallback"))
                                  + f'; plan / bound {_pct(s["single_ratio_to_bound"])}')})
    for size, (limit_s, quality_pct) in COLD_TARGETS.items():
        target = f"{_size(size)}: cold plan <= {limit_s:g} s at today's quality (>= {quality_pct:.2f}% of the bound)"
        s = _solver_at(stored, size)
        if s is None:
            rows.append({"area": area, "target": target, "measured": "not measured", "met": None})
            continue
        quality = round(s["ratio_to_bound"] * 100, 2)
        rows.append({"area": area, "target": target,
                     "met": s["solve_s"] <= limit_s and quality >= quality_pct,
                     "measured": (f'{s["solve_s"]:.1f} s at {quality:.2f}% of the bound (cold plan of the '
                                  f'1%-changed mesh: {s["cold_s"]:.1f} s)'
                                  + ("; **wall-clock limit hit**" if s.get("wall_limit_hit") else ""))})
    scale = stored.get("scale")
    target = f"{_size((50_000, 5_000))}: warm re-solve after a 1% change <= {SCALE_WARM_S:g} s without falling back to cold"
    if scale is None:
        rows.append({"area": area, "target": target, "measured": "not measured", "met": None})
    elif "failed" in scale:
        rows.append({"area": area, "target": target, "measured": f"scale run failed: {scale['failed']}", "met": False})
    else:
        w = scale["warm"]
        stayed = w.get("warm")
        rows.append({"area": area, "target": target, "met": scale["warm_s"] <= SCALE_WARM_S and stayed is True,
                     "measured": (f'{scale["warm_s"]:.1f} s; '
                                  + _warm_detail(stayed, w.get("resolved_workloads"), w.get("preemption_candidates"),
                                                 w.get("warm_fallback"))
                                  + f'; warm plan / bound {_pct(w["ratio_to_bound"])} (cold {scale["cold_s"]:.1f} s)')})
    return rows


def _quality_rows(families: dict | None) -> list[dict]:
    area = "quality"
    t1 = "never below the kube-scheduler-style baseline on any family mesh"
    t2 = (f">= {OPTIMUM_RATIO:.1%} of the proven optimum on every mesh up to {_size(OPTIMUM_MAX_SIZE)} "
          "that HiGHS proves")
    summary = (families or {}).get("summary")
    if not summary:
        return [{"area": area, "target": t, "measured": "not measured", "met": None} for t in (t1, t2)]
    meshes = sum(s["meshes"] for s in summary)
    below = [(s, seed) for s in summary for seed in s["below_baseline"]]
    worst = min(summary, key=lambda s: s["gain_worst"])
    where = [f'{s["family"]} {_size((s["workloads"], s["sites"]))} seed {seed}' for s, seed in below]
    rows = [{"area": area, "target": t1, "met": not below,
             "measured": (f"below on {len(below)} of {meshes} meshes" + (f" ({', '.join(where)})" if where else "")
                          + f'; worst gain {worst["gain_worst"] * 100:+.4f}% ({worst["family"]} '
                          f'{_size((worst["workloads"], worst["sites"]))})')}]
    small = [s for s in summary if "exact_proven" in s and s["workloads"] <= OPTIMUM_MAX_SIZE[0]
             and s["sites"] <= OPTIMUM_MAX_SIZE[1]]
    proven = [s for s in small if s["exact_proven"] and s.get("ratio_to_optimum_worst") is not None]
    if not proven:
        rows.append({"area": area, "target": t2, "met": None,
                     "measured": f'HiGHS proved none of {sum(s["meshes"] for s in small)} meshes'})
        return rows
    low = min(proven, key=lambda s: s["ratio_to_optimum_worst"])
    misses = [s for s in proven if s["ratio_to_optimum_worst"] < OPTIMUM_RATIO]
    rows.append({"area": area, "target": t2, "met": not misses,
                 "measured": (f'worst {low["ratio_to_optimum_worst"] * 100:.4f}% ({low["family"]} '
                              f'{_size((low["workloads"], low["sites"]))}) on the '
                              f'{sum(s["exact_proven"] for s in small)} of {sum(s["meshes"] for s in small)} meshes '
                              f'HiGHS proved optimal within {families.get("exact_limit_s", "?")} s'
                              + (f"; below in {', '.join(s['family'] + ' ' + _size((s['workloads'], s['sites'])) for s in misses)}"
                                 if misses else ""))})
    return rows


def target_rows(stored: dict) -> list[dict]:
    """Issue #19's targets from a ``bench/results.json`` dict: one dict per target with
    ``area``, ``target``, ``measured`` (the figure, in words) and ``met`` (True, False,
    or None when the figure is not in the results)."""
    return [*_operator_rows(stored.get("operator"), large=False),
            *_operator_rows(stored.get("operator_10k"), large=True),
            *_engine_rows(stored), *_quality_rows(stored.get("families"))]


def targets_table(rows: list[dict]) -> str:
    met = {True: "yes", False: "**no**", None: "not measured"}
    n_met = sum(r["met"] is True for r in rows)
    n_missed = sum(r["met"] is False for r in rows)
    lines = ["| area | target | measured | met? |", "|---|---|---|---|"]
    lines += [f'| {r["area"]} | {r["target"]} | {r["measured"]} | {met[r["met"]]} |' for r in rows]
    lines += ["", f"{n_met} of {len(rows)} targets met, {n_missed} missed"
              + (f", {len(rows) - n_met - n_missed} not measured" if n_met + n_missed < len(rows) else "") + "."]
    return "\n".join(lines)


def run_timeline() -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.timeline", "--json"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout)


def run_delivery(workloads: int, backend: str = "direct") -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.delivery", "--workloads", str(workloads), "--backend", backend, "--json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def delivery_table(r: dict) -> str:
    t = r.get("targets", {})

    def hit(key: str) -> str:
        return "yes" if t.get(key) else "**no**"

    backend = r.get("backend", "direct")
    lost = "its agent stopped" if backend == "ocm" else "member frozen"
    how = (" through Open Cluster Management (OCM's hub controllers, a klusterlet agent per member, lease 1 s, "
           "status sync 1 s)" if backend == "ocm" else " with kubeconfigs")
    return "\n".join([
        f'`python -m bench.delivery --workloads {r["workloads"]} --backend {backend} --json`: a hub and two member '
        f'clusters (each its own control plane with KWOK nodes), delivered{how}, {r["workloads"]} workloads of one '
        f'pod each, lostAfter {r["lost_after_s"]:g} s, 1-minute load average {r.get("load_average", "?")} at the end.',
        "",
        "| measure | value | target | met? |",
        "|---|---|---|---|",
        f'| last create -> every workload Available (pods ready in the members, read back) | '
        f'{r.get("seconds_to_all_available_after_last_create")} s (first create -> all: '
        f'{r.get("seconds_to_all_available")} s; creating took {r.get("seconds_to_create")} s) | <= 30 s | '
        f'{hit("all_available_within_30s_of_last_create")} |',
        f'| {lost} -> its {r.get("workloads_on_member_a")} workloads re-placed or Preempted | '
        f'{r.get("seconds_to_failover")} s ({r.get("failover_phases")}) | <= lostAfter + 5 s = '
        f'{r["lost_after_s"] + 5:g} s | {hit("failover_within_lost_after_plus_5s")} |',
        f'| operator peak RSS (VmHWM) | {(r.get("operator_rss_mb") or {}).get("VmHWM")} MB | - | - |',
    ])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(f"{w}x{s}" for w, s in SIZES))
    ap.add_argument("--operator-workloads", type=int, default=1000, help="workloads of the operator benchmark")
    ap.add_argument("--skip-operator", action="store_true",
                    help="skip the operator benchmarks, 1,000 and large (keep their last results)")
    ap.add_argument("--operator-large-workloads", type=int, default=10_000,
                    help="workloads of the second, large operator benchmark (0 skips it)")
    ap.add_argument("--skip-operator-large", action="store_true",
                    help="skip the large (10,000-workload) operator benchmark (keeps its last result)")
    ap.add_argument("--skip-families", action="store_true",
                    help="skip the mesh-family benchmark against the baseline and HiGHS (keeps its last result)")
    ap.add_argument("--skip-delivery", action="store_true",
                    help="skip the member-cluster delivery benchmark (keeps its last result)")
    ap.add_argument("--skip-timeline", action="store_true",
                    help="skip the grid-event timeline benchmark (keeps its last result)")
    ap.add_argument("--skip-scale", action="store_true",
                    help="skip the 50,000 x 5,000 scale benchmark (keeps its last result)")
    ap.add_argument("--scale-size", default="x".join(str(n) for n in SCALE_SIZE),
                    help="workloads x sites of the scale benchmark")
    a = ap.parse_args(argv)
    sizes = [tuple(int(x) for x in p.split("x")) for p in a.sizes.split(",")]
    scale_w, scale_s = (int(x) for x in a.scale_size.split("x"))
    results = []
    for w, s in sizes:
        print(f"bench {w} x {s} ...", file=sys.stderr, flush=True)
        results.append({"workloads": w, "sites": s, "kernel": run_json("bench.kernel", w, s),
                        "solver": run_json("bench.solver", w, s)})
    mach = machine()
    results_path = ROOT / "bench" / "results.json"
    try:
        previous = json.loads(results_path.read_text())
    except (OSError, ValueError):
        previous = {}
    if a.skip_families:
        families = previous.get("families")
    else:
        print("bench families ...", file=sys.stderr, flush=True)
        families = run_families()
    if a.skip_scale:
        scale = previous.get("scale")
    else:
        print(f"bench scale {scale_w} x {scale_s} ...", file=sys.stderr, flush=True)
        scale = run_scale(scale_w, scale_s)
    operator = None
    if a.skip_operator:
        operator = previous.get("operator")
    else:
        print(f"bench operator {a.operator_workloads} workloads ...", file=sys.stderr, flush=True)
        operator = run_operator(a.operator_workloads)
    if a.skip_operator or a.skip_operator_large or a.operator_large_workloads <= 0:
        operator_large = previous.get("operator_10k")
    else:
        print(f"bench operator {a.operator_large_workloads} workloads ...", file=sys.stderr, flush=True)
        operator_large = run_operator_large(a.operator_large_workloads)
    if a.skip_delivery:
        delivery, delivery_ocm = previous.get("delivery"), previous.get("delivery_ocm")
    else:
        print(f"bench delivery {a.operator_workloads} workloads (direct) ...", file=sys.stderr, flush=True)
        delivery = run_delivery(a.operator_workloads)
        print(f"bench delivery {a.operator_workloads} workloads (ocm) ...", file=sys.stderr, flush=True)
        delivery_ocm = run_delivery(a.operator_workloads, "ocm")
    if a.skip_timeline:
        timeline = previous.get("timeline")
    else:
        print("bench timeline 1000 x 50 ...", file=sys.stderr, flush=True)
        timeline = run_timeline()
    stored = {"machine": mach, "results": results, **({"families": families} if families else {}),
              **({"timeline": timeline} if timeline else {}),
              **({"scale": scale} if scale else {}), **({"operator": operator} if operator else {}),
              **({"operator_10k": operator_large} if operator_large else {}),
              **({"delivery": delivery} if delivery else {}), **({"delivery_ocm": delivery_ocm} if delivery_ocm else {})}
    # the targets count a solver size this run did not measure (--sizes) with its last result
    measured = {(r["workloads"], r["sites"]) for r in results}
    earlier = [r for r in previous.get("results") or [] if (r.get("workloads"), r.get("sites")) not in measured]
    targets = target_rows({**stored, "results": [*results, *earlier]})
    stored["targets"] = targets
    results_path.write_text(json.dumps(stored, indent=2) + "\n")
    plot(results, ROOT / "docs" / "benchmarks.png")
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n<!-- BEGIN RESULTS -->\n<!-- END RESULTS -->\n"
    block = "<!-- BEGIN RESULTS -->\n" + table(results, mach) + "\n\n![time and ratio to bound](benchmarks.png)\n<!-- END RESULTS -->"
    text = re.sub(r"<!-- BEGIN RESULTS -->.*<!-- END RESULTS -->", lambda _: block, text, flags=re.S)
    if families and not a.skip_families:
        from bench.families import table as families_table

        fam_block = ("<!-- BEGIN FAMILY RESULTS -->\n`python -m bench.families --json` (HiGHS limit "
                     f'{families["exact_limit_s"]:g} s per mesh), machine: {mach}.\n\n'
                     + families_table(families["summary"]) + "\n<!-- END FAMILY RESULTS -->")
        if "<!-- BEGIN FAMILY RESULTS -->" in text:
            text = re.sub(r"<!-- BEGIN FAMILY RESULTS -->.*<!-- END FAMILY RESULTS -->", lambda _: fam_block,
                          text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n## Mesh families\n\n" + fam_block + "\n"
    if scale and not a.skip_scale:
        scale_block = ("<!-- BEGIN SCALE RESULTS -->\nMachine: " + mach + ".\n\n" + scale_table(scale)
                       + "\n<!-- END SCALE RESULTS -->")
        # only where the page has made room for it: the section's prose is written by hand
        if "<!-- BEGIN SCALE RESULTS -->" in text:
            text = re.sub(r"<!-- BEGIN SCALE RESULTS -->.*<!-- END SCALE RESULTS -->", lambda _: scale_block,
                          text, flags=re.S)
    if operator and not a.skip_operator:
        op_block = "<!-- BEGIN OPERATOR RESULTS -->\n" + operator_table(operator) + "\n<!-- END OPERATOR RESULTS -->"
        if "<!-- BEGIN OPERATOR RESULTS -->" in text:
            text = re.sub(r"<!-- BEGIN OPERATOR RESULTS -->.*<!-- END OPERATOR RESULTS -->", lambda _: op_block,
                          text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n## Operator\n\n" + op_block + "\n"
    if delivery and not a.skip_delivery and "<!-- BEGIN DELIVERY RESULTS -->" in text:
        dl_block = "<!-- BEGIN DELIVERY RESULTS -->\n" + delivery_table(delivery) + "\n<!-- END DELIVERY RESULTS -->"
        text = re.sub(r"<!-- BEGIN DELIVERY RESULTS -->.*<!-- END DELIVERY RESULTS -->", lambda _: dl_block,
                      text, flags=re.S)
    if delivery_ocm and not a.skip_delivery and "<!-- BEGIN DELIVERY OCM RESULTS -->" in text:
        ocm_block = ("<!-- BEGIN DELIVERY OCM RESULTS -->\n" + delivery_table(delivery_ocm)
                     + "\n<!-- END DELIVERY OCM RESULTS -->")
        text = re.sub(r"<!-- BEGIN DELIVERY OCM RESULTS -->.*<!-- END DELIVERY OCM RESULTS -->", lambda _: ocm_block,
                      text, flags=re.S)
    if timeline and not a.skip_timeline:
        from bench.timeline import table as timeline_table

        tl_block = ("<!-- BEGIN TIMELINE RESULTS -->\nMachine: " + mach + ".\n\n" + timeline_table(timeline)
                    + "\n<!-- END TIMELINE RESULTS -->")
        if "<!-- BEGIN TIMELINE RESULTS -->" in text:
            text = re.sub(r"<!-- BEGIN TIMELINE RESULTS -->.*<!-- END TIMELINE RESULTS -->", lambda _: tl_block,
                          text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n## Grid events: the timeline\n\n" + tl_block + "\n"
        print(tl_block)
    tg_block = ("<!-- BEGIN ENGINE TARGETS -->\n" + f"Machine (of this run): {mach}.\n\n" + targets_table(targets)
                + "\n<!-- END ENGINE TARGETS -->")
    if "<!-- BEGIN ENGINE TARGETS -->" in text:
        text = re.sub(r"<!-- BEGIN ENGINE TARGETS -->.*<!-- END ENGINE TARGETS -->", lambda _: tg_block, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Targets (issue #19)\n\n" + tg_block + "\n"
    doc.write_text(text)
    print(table(results, mach))
    if families and not a.skip_families:
        print(fam_block)
    if scale and not a.skip_scale:
        print(scale_block)
    if operator and not a.skip_operator:
        print(operator_table(operator))
    print(tg_block)


if __name__ == "__main__":
    main()
