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

Last, ``bench.timeline`` (a day of grid events planned ahead at 1,000 x 50, the instants
ahead planned greedily and with CP-SAT, side by side) stores its JSON under
``"timeline"`` and rewrites the table between the BEGIN/END TIMELINE RESULTS markers;
``--skip-timeline`` skips it (the previous result is kept).
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
    rows = [
        f"Machine: {mach}.",
        "",
        "| size | pairs | Cython pairs/s (best / median) | x NumPy | x Python | of bandwidth bound (best / median) | load avg | plan / bound | greedy / bound | solve s | bound s | cold s | warm s | warm speedup | warm / bound | status | wall limit hit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        k, s = r["kernel"], r["solver"]
        rows.append(
            f'| {r["workloads"]} x {r["sites"]} | {k["pairs"]:,} | {k["cython_pairs_per_s"]:.3g} / '
            f'{k["cython_median_pairs_per_s"]:.3g} | '
            f'{k["speedup_vs_numpy"]:.1f} | {k["speedup_vs_python"]:.0f} | {k["fraction_of_bound"]:.0%} / '
            f'{k["median_fraction_of_bound"]:.0%} | {k["load_average_before"]:.1f} | '
            f'{s["ratio_to_bound"]:.4f} | {s["greedy_ratio_to_bound"]:.4f} | {s["solve_s"]:.1f} | '
            f'{s["bound_s"]:.2f} | {s["cold_s"]:.1f} | {s["warm_s"]:.1f} | {s["warm_speedup"]:.2f} | '
            f'{s["warm_ratio_to_bound"]:.4f} | {s["status"]} | {"yes" if s["wall_limit_hit"] else "no"} |'
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


def operator_table(r: dict) -> str:
    def fmt(value, unit="") -> str:
        return "not reached" if value is None else f"{value}{unit}"

    t = r.get("targets", {})

    def hit(key: str) -> str:
        return {True: "yes", False: "**no**", None: "**no** (not reached)"}[t.get(key)]

    detail = r.get("noop_writes_detail", {})
    return "\n".join([
        f'`python -m bench.operator --workloads {r["workloads"]} --json`: {r["workloads"]} workloads on '
        f'{r["sites"]} sites, started {r.get("started_utc", "?")}, 1-minute load average '
        f'{r["load_average_before"]} before, {r["load_average_burst"]} after the burst, '
        f'{r["load_average_after"]} at the end.',
        "",
        "| measure | value | target | met? |",
        "|---|---|---|---|",
        f'| first create -> all placed | {fmt(r["seconds_to_all_placed"], " s")} (creating took {r["create_s"]} s; '
        f'{r["solves_per_burst"]} solves) | <= 10 s at 1,000 | {hit("all_placed_within_10_s")} |',
        f'| change -> status p50 / p99 | {fmt(r["p50_change_to_status_s"], " s")} / '
        f'{fmt(r["p99_change_to_status_s"], " s")} ({r["changes"]} priority patches at '
        f'{r["change_rate_achieved_per_s"]}/s) | p99 <= 5 s at 1,000 | {hit("p99_change_to_status_within_5_s")} |',
        f'| status patches per changed object | {r["status_patches_per_changed_object"]} '
        f'({r["changed_objects_with_extra_patches"]} of {r["changed_objects"]} written more often than changed; '
        f'{r["status_patches_of_unchanged_objects"]} patches of unchanged objects) | <= 1 | '
        f'{hit("at_most_1_patch_per_changed_object")} |',
        f'| status patches per created object (burst) | {r["status_patches_per_created_object"]} | 1 | '
        f'{"yes" if r["max_status_patches_of_a_created_object"] <= 1 else "**no**"} |',
        f'| no-op writes in {detail.get("operator_solves", 0)} solves of a quiet 5 s | {r["noop_writes"]} | 0 | '
        f'{hit("zero_noop_writes")} |',
        f'| operator peak RSS (VmHWM) | {r["rss_mb"]} MB | - | - |',
    ])


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
    ap.add_argument("--skip-operator", action="store_true", help="skip the operator benchmark (keeps its last result)")
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
              **({"delivery": delivery} if delivery else {}), **({"delivery_ocm": delivery_ocm} if delivery_ocm else {})}
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
    doc.write_text(text)
    print(table(results, mach))
    if families and not a.skip_families:
        print(fam_block)
    if scale and not a.skip_scale:
        print(scale_block)
    if operator and not a.skip_operator:
        print(operator_table(operator))


if __name__ == "__main__":
    main()
