"""Independent checks of a Plan against its Mesh (real units, not the engine's integers).

Used by the property tests: every rule of the placement problem, re-derived from the
input dataclasses without the engine's snapshot arrays.
"""

from __future__ import annotations

import math

from placement import capacity
from placement.decisions import PHASE_PLACED, Plan
from placement.problem import Mesh
from placement.topology import latency_matrix

TOL = 1e-6


def check_plan(mesh: Mesh, plan: Plan) -> None:
    lm = latency_matrix(mesh)
    factories = {f.name: f for f in mesh.factories}
    fleets = {f.name: f for f in mesh.fleets}
    pool_used: dict[tuple[str, str], int] = {}
    site_w: dict[str, float] = {}
    site_ni_w: dict[str, float] = {}
    assert set(plan.workloads) == {w.key for w in mesh.workloads}
    for w in mesh.workloads:
        d = plan.workloads[w.key]
        if d.phase != PHASE_PLACED:
            assert not d.assignments
            assert d.message
            continue
        assert d.assignments
        assert len(d.assignments) <= w.site_limit
        if w.type == "training":
            assert len(d.assignments) == 1, "gang: training runs whole on one site"
        if w.accelerators is not None:
            assert sum(a.devices for a in d.assignments) == w.accelerators
        else:
            assert sum(a.tokens_per_second for a in d.assignments) >= w.tokens_per_second * (1 - 1e-9)
        for a in d.assignments:
            assert a.devices > 0
            if a.site in factories:
                f = factories[a.site]
                pool = next(p for p in f.pools if p.model == a.accelerator_model)
                watts = pool.watts_per_device * f.pue
                mem = pool.memory_gib
                assert not f.cordoned
            else:
                f = fleets[a.site]
                assert w.allow_fleets, "fleets not allowed"
                assert w.type != "training", "training needs a factory"
                assert not f.cordoned
                watts = f.watts_per_device
                mem = f.memory_gib
            assert mem >= w.min_memory_gib
            assert not w.accelerator_models or a.accelerator_model in w.accelerator_models
            assert not w.allowed_countries or f.country in w.allowed_countries
            assert f.country not in w.denied_countries
            if w.max_latency_ms is not None:
                for u in w.users:
                    if u.weight > 0:
                        assert lm.latency_ms(u.region, a.site) <= w.max_latency_ms + TOL
            pool_used[(a.site, a.accelerator_model)] = pool_used.get((a.site, a.accelerator_model), 0) + a.devices
            site_w[a.site] = site_w.get(a.site, 0.0) + a.devices * watts
            if not w.interruptible:
                site_ni_w[a.site] = site_ni_w.get(a.site, 0.0) + a.devices * watts
    for (site, model), n in pool_used.items():
        if site in factories:
            f = factories[site]
            assert n <= sum(p.count for p in f.pools if p.model == model)
        else:
            assert n <= capacity.fleet_effective_devices(fleets[site], mesh.at)
    for site, w_used in site_w.items():
        if site in factories:
            f = factories[site]
            assert w_used <= capacity.factory_usable_mw(f) * 1e6 + 1.0
            assert site_ni_w.get(site, 0.0) <= f.firm_mw * 1e6 + 1.0, "non-interruptible within firm"
        else:
            cap = fleets[site].max_fleet_mw
            assert not math.isfinite(cap) or w_used <= cap * 1e6 + 1.0
    # usage report agrees
    for site, w_used in site_w.items():
        u = plan.sites[site]
        assert abs(u.power_mw_used - w_used / 1e6) <= 1e-3 * max(1.0, w_used / 1e6)
    assert plan.stats.objective >= plan.stats.greedy_objective
