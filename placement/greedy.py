"""Greedy placement: the kube-scheduler way, as CP-SAT hint, fallback and floor.

Called by :mod:`placement.pipeline` (cold and warm paths). The compiled
``placement_ext.MeshKernels.greedy_place`` (the snapshot's ``kernels``) places
workloads one at a time in a queue order, each on the cheapest column(s) with room
left, whole or not at all. Here: the queue
orders of the multi-start (:func:`greedy_orders`; the first is the kube-scheduler
one, priority then input order), running them (:func:`run_greedy`), and turning a
run into devices per candidate (:func:`devices_from_greedy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.candidates import Candidates, Devices
from placement.snapshot import Snapshot
from placement_ext.arrays import TopKArrays


@dataclass(frozen=True, slots=True)
class GreedyRun:
    """One greedy pass: per workload, the columns taken and their devices."""

    cols: NDArray[np.int32]  # [W, L], -1 = none
    devices: NDArray[np.float64]  # [W, L]
    placed: NDArray[np.bool_]  # [W]


def greedy_order(snap: Snapshot) -> NDArray[np.int32]:
    """Priority first (high to low), then input order: the kube-scheduler queue."""
    W = len(snap.keys)
    return np.lexsort((np.arange(W), -snap.priority)).astype(np.int32)


def value_order(snap: Snapshot) -> NDArray[np.int32]:
    """Priority-weighted demand first (high to low), then input order: a few big
    workloads ahead of the many small ones they are worth more than."""
    W = len(snap.keys)
    return np.lexsort((np.arange(W), -snap.value)).astype(np.int32)


def greedy_orders(snap: Snapshot, kout: TopKArrays) -> list[NDArray[np.int32]]:
    """Queue orders for the multi-start greedy; the first is the kube-scheduler one.

    The others favour value density (value per watt of the cheapest candidate),
    plain value, and the hardest-to-place first (fewest feasible sites). Ties keep
    the input order, so the orders are a function of the snapshot alone.
    """
    W = len(snap.keys)
    idx = np.arange(W)
    kc, kn = kout["cand_col"], kout["cand_devices"]
    watts = np.full(W, np.inf)
    if W and kc.size and snap.n_cols:
        col_watts = snap.cols.watts[np.maximum(kc, 0)]
        watts = np.where(kc >= 0, kn * col_watts, np.inf).min(axis=1)
    density = snap.value / np.maximum(np.where(np.isfinite(watts), watts, 1e30), 1.0)
    return [
        greedy_order(snap),
        np.lexsort((idx, -density)).astype(np.int32),
        value_order(snap),
        np.lexsort((idx, kout["feasible_sites"], -snap.priority)).astype(np.int32),
    ]


def run_greedy(snap: Snapshot, order: NDArray[np.int32]) -> GreedyRun:
    """One pass of the compiled greedy placer over ``snap`` in ``order``."""
    cols, devices, placed = snap.kernels.greedy_place(order, snap.site_firm_watts, snap.site_total_watts)
    return GreedyRun(cols=cols, devices=devices, placed=placed)


def multi_start(snap: Snapshot, kout: TopKArrays) -> list[GreedyRun]:
    """One greedy run per queue order of :func:`greedy_orders` (kube-scheduler first)."""
    return [run_greedy(snap, order) for order in greedy_orders(snap, kout)]


def all_columns(runs: list[GreedyRun], n_workloads: int) -> NDArray[np.int32]:
    """Every column any run chose, side by side ([W, L x runs])."""
    if not runs:
        return np.full((n_workloads, 0), -1, dtype=np.int32)
    return np.concatenate([r.cols for r in runs], axis=1)


def devices_from_greedy(cands: Candidates, run: GreedyRun) -> Devices:
    """A greedy run expressed as devices per candidate (its columns are candidates:
    :func:`placement.candidates.build_candidates` adds them)."""
    dev = np.zeros(cands.n, dtype=np.int64)
    for w in range(cands.n_workloads):
        lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
        for c, n in zip(run.cols[w].tolist(), run.devices[w].tolist(), strict=True):
            if c < 0:
                continue
            idx = lo + np.flatnonzero(cands.col[lo:hi] == c)
            dev[idx[0]] += int(n)
    return dev
