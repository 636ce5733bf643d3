"""Kernel inputs for the placement_ext tests: random arrays (sites of 1-3 columns, so
multi-pool sites are common) and the arrays of a synthetic mesh."""

from __future__ import annotations

import numpy as np

from placement_ext import ColumnArrays, WorkloadArrays


def random_arrays(
    seed: int, W: int, S: int, R: int = 4, NC: int = 3, NM: int = 3
) -> tuple[ColumnArrays, WorkloadArrays]:
    rng = np.random.default_rng(seed)
    per_site = rng.integers(1, 4, size=S)
    site_ptr = np.concatenate(([0], np.cumsum(per_site))).astype(np.int32)
    C = int(site_ptr[-1])
    site = np.repeat(np.arange(S), per_site).astype(np.int32)
    is_fleet_site = rng.random(S) < 0.4
    firm = np.floor(rng.uniform(0, 5e5, S))
    total = firm + np.floor(rng.uniform(0, 5e5, S))
    cols = ColumnArrays(
        site=site,
        is_fleet=is_fleet_site[site].astype(np.uint8),
        cordoned=(rng.random(S) < 0.1)[site].astype(np.uint8),
        country=rng.integers(0, NC, S)[site].astype(np.int32),
        model=rng.integers(0, NM, C).astype(np.int32),
        memory_gib=rng.choice([8.0, 32.0, 80.0, 192.0], C),
        cap_devices=np.floor(rng.uniform(0, 400, C)),
        tps_milli=np.where(rng.random(C) < 0.05, 0.0, np.floor(rng.uniform(1e4, 5e6, C))),
        watts=np.floor(rng.uniform(50, 2000, C)),
        e_dev=np.floor(rng.uniform(0, 1000, C)),
        e_tok=np.floor(rng.uniform(0, 1000, C)),
        firm_watts=firm[site],
        total_watts=total[site],
        site_ptr=site_ptr,
    )
    n_users = rng.integers(0, 3, W)
    user_ptr = np.concatenate(([0], np.cumsum(n_users))).astype(np.int32)
    n_cur = rng.integers(0, 2, W) * (rng.random(W) < 0.3)
    cur_ptr = np.concatenate(([0], np.cumsum(n_cur))).astype(np.int32)
    lat = rng.uniform(0, 200, (R, C))
    lat[rng.random((R, C)) < 0.1] = np.inf
    dev = rng.random(W) < 0.5
    wls = WorkloadArrays(
        is_training=(rng.random(W) < 0.2).astype(np.uint8),
        allow_fleets=(rng.random(W) < 0.6).astype(np.uint8),
        interruptible=(rng.random(W) < 0.5).astype(np.uint8),
        site_limit=np.where(rng.random(W) < 0.4, rng.integers(2, 4, W), 1).astype(np.int32),
        accel=np.where(dev, rng.integers(1, 300, W), 0).astype(np.float64),
        tokens_milli=np.where(dev, 0, np.floor(rng.uniform(1e5, 5e8, W))).astype(np.float64),
        min_memory_gib=rng.choice([0.0, 16.0, 40.0, 100.0], W),
        max_latency_ms=np.where(rng.random(W) < 0.6, rng.uniform(10, 200, W), np.inf),
        user_ptr=user_ptr,
        user_region=rng.integers(0, R, int(user_ptr[-1])).astype(np.int32),
        user_weight=rng.uniform(0.05, 1.0, int(user_ptr[-1])),
        cur_ptr=cur_ptr,
        cur_site=rng.integers(0, S, int(cur_ptr[-1])).astype(np.int32),
        country_ok=(rng.random((W, NC)) < 0.7).astype(np.uint8),
        model_ok=(rng.random((W, NM)) < 0.7).astype(np.uint8),
        latency=lat,
    )
    return cols, wls


def site_power(cols: ColumnArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-site firm and total watts from the column arrays (as ``Snapshot`` has them)."""
    n_sites = len(cols.site_ptr) - 1
    firm = np.zeros(n_sites)
    total = np.zeros(n_sites)
    firm[cols.site] = cols.firm_watts
    total[cols.site] = cols.total_watts
    return firm, total


def mesh_arrays(workloads: int, sites: int, seed: int, load: float = 1.3):
    """``(cols, wls, site_firm_watts, site_total_watts)`` of ``synthetic_mesh``: factories
    with 1-3 accelerator pools (multi-column sites), fleets, splittable workloads."""
    from placement import snapshot  # here, so that the other tests need only the kernels
    from tests.support.meshes import synthetic_mesh

    snap = snapshot.build(synthetic_mesh(workloads, sites, seed=seed, load=load))
    return snap.cols, snap.wls, snap.site_firm_watts, snap.site_total_watts
