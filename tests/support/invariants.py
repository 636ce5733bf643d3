"""Independent checks of a Plan against its Mesh (real units, not the engine's integers).

Used by the property tests and the benchmarks: every rule of the placement problem,
re-derived from the input dataclasses without the engine's snapshot arrays.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields

from placement import capacity
from placement.decisions import PHASE_PLACED, PHASE_UNSCHEDULABLE, TIMING_FIELDS, Plan
from placement.problem import Mesh
from placement.topology import latency_matrix

TOL = 1e-6
# The engine counts tokens in milli-tokens/s: supply per device rounded down, demand
# rounded up. A device it cannot spare may look spare in real units by this much.
MILLI = 1e-3


def canonical(plan: Plan) -> str:
    """The plan as text: every decision, every site's usage and every statistic except
    the timings. Two runs of the same solve must give the same text."""
    stats = {f.name: getattr(plan.stats, f.name) for f in fields(plan.stats) if f.name not in TIMING_FIELDS}
    doc = {
        "workloads": {k: asdict(d) for k, d in sorted(plan.workloads.items())},
        "sites": {k: asdict(u) for k, u in sorted(plan.sites.items())},
        "stats": stats,
    }
    return json.dumps(doc, sort_keys=True, default=str)


def check_plan(mesh: Mesh, plan: Plan) -> None:
    lm = latency_matrix(mesh)
    factories = {f.name: f for f in mesh.factories}
    fleets = {f.name: f for f in mesh.fleets}
    workloads = {w.key: w for w in mesh.workloads}
    pool_used: dict[tuple[str, str], int] = {}
    site_w: dict[str, float] = {}
    site_ni_w: dict[str, float] = {}
    assert set(plan.workloads) == set(workloads)
    assert set(plan.sites) == set(factories) | set(fleets)
    for w in mesh.workloads:
        d = plan.workloads[w.key]
        assert d.key == w.key
        if d.phase != PHASE_PLACED:
            assert d.phase == PHASE_UNSCHEDULABLE
            assert not d.assignments
            assert d.message and "\n" not in d.message
            for other in d.displaced_by:  # placed, and of higher priority
                assert plan.workloads[other].phase == PHASE_PLACED
                assert workloads[other].priority > w.priority
            continue
        assert d.assignments and not d.displaced_by
        sites = {a.site for a in d.assignments}
        assert len(sites) <= w.site_limit, "maxSites counts distinct sites"
        assert len(d.assignments) == len({(a.site, a.accelerator_model) for a in d.assignments})
        if w.type == "training":
            assert len(d.assignments) == 1, "gang: training runs whole on one site"
        if w.accelerators is not None:
            assert sum(a.devices for a in d.assignments) == w.accelerators, "device demand is exact"
        else:
            assert w.tokens_per_second is not None
            supply = sum(a.tokens_per_second for a in d.assignments)
            assert supply >= w.tokens_per_second * (1 - 1e-9)
            devices = sum(a.devices for a in d.assignments)
            for a in d.assignments:  # no device it does not need
                per_device = a.tokens_per_second / a.devices
                assert supply - per_device < w.tokens_per_second + MILLI * devices, (
                    f"{w.key}: a {a.accelerator_model} device at {a.site} is surplus"
                )
        users = [u for u in w.users if u.weight > 0]
        for a in d.assignments:
            assert a.devices > 0
            if a.site in factories:
                f = factories[a.site]
                pool = next(p for p in f.pools if p.model == a.accelerator_model)
                watts = pool.watts_per_device * f.pue
                mem = pool.memory_gib
                country = f.country
                assert not f.cordoned
            else:
                fl = fleets[a.site]
                assert w.allow_fleets, "fleets not allowed"
                assert w.type != "training", "training needs a factory"
                assert not fl.cordoned
                watts = fl.watts_per_device
                mem = fl.memory_gib
                country = fl.country
            assert mem >= w.min_memory_gib
            assert not w.accelerator_models or a.accelerator_model in w.accelerator_models
            assert not w.allowed_countries or country in w.allowed_countries
            assert country not in w.denied_countries
            latencies = [lm.latency_ms(u.region, a.site) for u in users]
            if w.max_latency_ms is not None:
                assert all(ms <= w.max_latency_ms + TOL for ms in latencies)
            if users and all(math.isfinite(ms) for ms in latencies):
                # the figure the CRD shows: the worst user region, not a mean
                assert a.latency_ms is not None and abs(a.latency_ms - max(latencies)) <= TOL
                mean = sum(ms * u.weight for ms, u in zip(latencies, users, strict=True)) / sum(u.weight for u in users)
                assert a.mean_latency_ms is not None and abs(a.mean_latency_ms - mean) <= TOL
            else:
                assert a.latency_ms is None and a.mean_latency_ms is None
            pool_used[(a.site, a.accelerator_model)] = pool_used.get((a.site, a.accelerator_model), 0) + a.devices
            site_w[a.site] = site_w.get(a.site, 0.0) + a.devices * watts
            if not w.interruptible:
                site_ni_w[a.site] = site_ni_w.get(a.site, 0.0) + a.devices * watts
    for (site, model), n in pool_used.items():
        if site in factories:
            assert n <= sum(p.count for p in factories[site].pools if p.model == model)
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
    s = plan.stats
    assert s.objective >= s.greedy_objective
    assert s.placed_workloads == sum(1 for d in plan.workloads.values() if d.phase == PHASE_PLACED)
    assert all(getattr(s, name) >= 0 for name in TIMING_FIELDS)
