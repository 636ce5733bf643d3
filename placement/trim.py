"""Trim: a workload never keeps a device it does not need.

Called by :mod:`placement.solve` as the last step of every solve, on whatever plan
won (CP-SAT's phase B, phase A when phase B did not finish, the hint, the greedy
fallback). Phase A only asks for ``sum devices x tokens/s >= demand``, so a plan cut
short before phase B can carry surplus devices: thousands of them, megawatts of
power. Here, per token-demand workload, devices are removed most expensive first
(cost per device: energy >> latency >> stability; then more watts; then the higher
column) as long as the demand stays met. Afterwards removing any one device leaves
the demand unmet. Removing devices only frees capacity and power and never adds a
site, so the plan stays feasible; device-count demand is exact by construction.
"""

from __future__ import annotations

import numpy as np

from placement.candidates import Candidates, Devices
from placement.snapshot import Snapshot


def trim_surplus(snap: Snapshot, cands: Candidates, devices: Devices) -> tuple[Devices, int]:
    """``devices`` without surplus devices, and how many were removed."""
    out = devices.copy()
    removed = 0
    tps_milli = snap.cols.tps_milli
    watts = snap.cols.watts
    for w in range(cands.n_workloads):
        if snap.wls.accel[w] > 0:
            continue  # device demand: the model and the greedy give exactly the demand
        on = [i for i in cands.rows(w) if out[i] > 0]
        if not on:
            continue
        supply = sum(int(out[i]) * int(tps_milli[cands.col[i]]) for i in on)
        surplus = supply - int(snap.wls.tokens_milli[w])
        if surplus <= 0:
            continue
        on.sort(key=lambda i: (-int(cands.cost_per_device[i]), -float(watts[cands.col[i]]), -int(cands.col[i])))
        for i in on:
            per_device = int(tps_milli[cands.col[i]])
            k = int(out[i]) if per_device <= 0 else min(int(out[i]), surplus // per_device)
            if k > 0:
                out[i] -= k
                surplus -= k * per_device
                removed += k
    return out.astype(np.int64), removed
