"""feasible_devices (placement.candidates), vectorised over workloads, against a plain
per-workload reading of the rules written here apart: greedy plans pass, and plans
with devices moved at random pass or fail exactly as the rules say."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.candidates import Candidates, Devices, build_candidates, feasible_devices
from placement.greedy import all_columns, devices_from_greedy, multi_start
from placement.snapshot import Snapshot, build
from tests.support.meshes import synthetic_mesh


def rules_hold(snap: Snapshot, cands: Candidates, devices: Devices) -> bool:
    """Every rule, one workload and one site at a time."""
    cols, wls = snap.cols, snap.wls
    if (devices < 0).any():
        return False
    used = np.zeros(snap.n_cols)
    total = np.zeros(snap.n_sites)
    firm = np.zeros(snap.n_sites)
    for w in range(cands.n_workloads):
        rows = [(int(cands.col[i]), int(devices[i]), int(cands.need[i])) for i in cands.rows(w) if devices[i] > 0]
        if not rows:
            continue
        if len({int(cols.site[c]) for c, _d, _n in rows}) > wls.site_limit[w]:
            return False
        if wls.site_limit[w] <= 1 and (len(rows) != 1 or rows[0][1] != rows[0][2]):
            return False
        if wls.accel[w] > 0 and sum(d for _c, d, _n in rows) != wls.accel[w]:
            return False
        if wls.accel[w] <= 0 and sum(d * cols.tps_milli[c] for c, d, _n in rows) < wls.tokens_milli[w]:
            return False
        for c, d, _n in rows:
            used[c] += d
            total[cols.site[c]] += d * cols.watts[c]
            if not wls.interruptible[w]:
                firm[cols.site[c]] += d * cols.watts[c]
    return bool((used <= cols.cap_devices + 1e-9).all() and (total <= snap.site_total_watts + 1e-6).all()
                and (firm <= np.minimum(snap.site_firm_watts, snap.site_total_watts) + 1e-6).all())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), workloads=st.integers(1, 60), sites=st.integers(1, 8),
       load=st.floats(0.8, 3.0), moves=st.integers(0, 4))
def test_feasible_devices_agrees_with_the_rules_one_workload_at_a_time(seed, workloads, sites, load, moves) -> None:
    snap = build(synthetic_mesh(workloads, sites, seed=seed, load=load))
    kout = snap.kernels.filter_score_topk(8, 1)
    runs = multi_start(snap, kout)
    cands = build_candidates(snap, kout, all_columns(runs, len(snap.keys)), 10**6)
    rng = np.random.default_rng(seed)
    for run in runs:
        plan = devices_from_greedy(cands, run)
        assert feasible_devices(snap, cands, plan) and rules_hold(snap, cands, plan)
        for _ in range(10):
            moved = plan.copy()
            for i in rng.integers(0, max(1, cands.n), size=moves if cands.n else 0):
                moved[i] = max(0, moved[i] + int(rng.integers(-3, 4)))
            assert feasible_devices(snap, cands, moved) == rules_hold(snap, cands, moved)
