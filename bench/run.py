"""``make bench``: kernel and solver benchmarks at 1k x 100, 5k x 500, 10k x 1000.

Runs ``bench.kernel`` and ``bench.solver`` at each size (each in this process, one
after the other), writes ``bench/results.json``, draws ``docs/benchmarks.png`` (time
and ratio to the plan's bound against size) and rewrites the results table in
``docs/benchmarks.md`` between its BEGIN/END markers, stating the machine.
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(f"{w}x{s}" for w, s in SIZES))
    a = ap.parse_args(argv)
    sizes = [tuple(int(x) for x in p.split("x")) for p in a.sizes.split(",")]
    results = []
    for w, s in sizes:
        print(f"bench {w} x {s} ...", file=sys.stderr, flush=True)
        results.append({"workloads": w, "sites": s, "kernel": run_json("bench.kernel", w, s),
                        "solver": run_json("bench.solver", w, s)})
    mach = machine()
    (ROOT / "bench" / "results.json").write_text(json.dumps({"machine": mach, "results": results}, indent=2) + "\n")
    plot(results, ROOT / "docs" / "benchmarks.png")
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n<!-- BEGIN RESULTS -->\n<!-- END RESULTS -->\n"
    block = "<!-- BEGIN RESULTS -->\n" + table(results, mach) + "\n\n![time and ratio to bound](benchmarks.png)\n<!-- END RESULTS -->"
    text = re.sub(r"<!-- BEGIN RESULTS -->.*<!-- END RESULTS -->", lambda _: block, text, flags=re.S)
    doc.write_text(text)
    print(table(results, mach))


if __name__ == "__main__":
    main()
