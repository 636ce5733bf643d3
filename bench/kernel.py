"""Kernel benchmark: pairs/s of the fused filter+score+top-K pass.

``python -m bench.kernel --workloads W --sites S --json`` prints one JSON object:
Cython (OpenMP, all cores; 2 warm-up calls, then best and median of 9), its NumPy
twin, its pure-Python twin (on a sample of workloads), and a memory-bandwidth bound
(copy bandwidth with the same thread count, best of before/after the kernel runs /
bytes the kernel reads per pair). The 1-minute load average before the run is
recorded, so a figure taken on a busy machine shows as such. Called by ``bench.run`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from placement import snapshot
from placement_ext import filter_score_topk
from placement_ext.reference import filter_score_topk_numpy, filter_score_topk_python, to_python
from tests.support.meshes import synthetic_mesh


def copy_bandwidth_bytes_per_s(threads: int, mib: int = 256, repeats: int = 5) -> float:
    """Bytes moved per second by a large memcpy (read + write counted), split over
    ``threads`` threads (NumPy releases the GIL in copyto) - the same thread count
    as the kernel, so the bound and the kernel see the same machine."""
    src = np.ones(mib * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    chunks = np.array_split(np.arange(src.size), threads)
    bounds = [(int(c[0]), int(c[-1]) + 1) for c in chunks if c.size]
    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats + 1):  # the first is a warm-up (page faults)
            t = time.perf_counter()
            list(pool.map(lambda ab: np.copyto(dst[ab[0]:ab[1]], src[ab[0]:ab[1]]), bounds))
            best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def bytes_per_pair(snap) -> float:
    """Bytes the kernel reads for one pair that goes through every filter: the
    column's fields (int32 site, country, model; uint8 flags; float64 memory,
    capacity, tokens/s, watts, energy tier, firm and total power), one latency per
    user (float64) and the workload's country and model flags (uint8)."""
    col = 3 * 4 + 2 * 1 + 7 * 8
    users = float(np.diff(snap.wls.user_ptr).mean()) if len(snap.keys) else 0.0
    return col + 8 * users + 2


def times(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Wall times of ``repeats`` calls after ``warmup`` untimed ones (thread pool
    start-up, page faults of the outputs and first-touch caches are not measured)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def best_time(fn, repeats: int) -> float:
    return min(times(fn, repeats, warmup=0))


def run(workloads: int, sites: int, seed: int = 0, top_k: int = 16, python_sample: int = 20) -> dict:
    mesh = synthetic_mesh(workloads, sites, seed=seed)
    snap = snapshot.build(mesh)
    threads = os.cpu_count() or 1
    pairs = len(snap.keys) * snap.n_cols
    load_before = os.getloadavg()[0]
    bw_before = copy_bandwidth_bytes_per_s(threads)
    cy_times = times(lambda: filter_score_topk(snap.cols, snap.wls, top_k, threads), 9, warmup=2)
    cy_s = min(cy_times)
    cy_median_s = float(np.median(cy_times))
    np_s = best_time(lambda: filter_score_topk_numpy(snap.cols, snap.wls, top_k), 1)
    pc, pw = to_python(snap.cols, snap.wls)
    sample = list(range(min(python_sample, len(snap.keys))))
    py_s = best_time(lambda: filter_score_topk_python(pc, pw, top_k, workloads=sample), 1)
    py_pairs = len(sample) * snap.n_cols
    bw = max(bw_before, copy_bandwidth_bytes_per_s(threads))
    bpp = bytes_per_pair(snap)
    cy_rate = pairs / cy_s
    bound = bw / bpp
    return {
        "workloads": len(snap.keys),
        "sites": sites,
        "site_columns": snap.n_cols,
        "pairs": pairs,
        "threads": threads,
        "cython_s": cy_s,
        "cython_median_s": cy_median_s,
        "cython_median_pairs_per_s": pairs / cy_median_s,
        "median_fraction_of_bound": (pairs / cy_median_s) / (bw / bpp),
        "load_average_before": load_before,
        "cython_pairs_per_s": cy_rate,
        "numpy_pairs_per_s": pairs / np_s,
        "python_pairs_per_s": py_pairs / py_s,
        "python_sample_workloads": len(sample),
        "copy_bandwidth_gb_per_s": bw / 1e9,
        "bytes_per_pair": bpp,
        "bandwidth_bound_pairs_per_s": bound,
        "speedup_vs_numpy": cy_rate / (pairs / np_s),
        "speedup_vs_python": cy_rate / (py_pairs / py_s),
        "fraction_of_bound": cy_rate / bound,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    r = run(a.workloads, a.sites, a.seed)
    if a.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k:>28}: {v:,.3f}" if isinstance(v, float) else f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
