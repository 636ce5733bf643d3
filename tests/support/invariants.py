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
from placement.problem import Mesh, WorkBudgets
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


def check_plan(mesh: Mesh, plan: Plan, warm_floor_gap: float = WorkBudgets().warm_floor_gap) -> None:
    """Every rule of a plan holds for ``mesh``. The floor: a cold plan places at least
    the kube-scheduler-style greedy; a warm re-plan at most ``warm_floor_gap`` (the
    ``WorkBudgets`` it was made with) below it, and its stats say how far."""
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
    floor = s.greedy_placed_priority_demand
    assert s.floor_shortfall == max(0.0, floor - s.placed_priority_demand) / max(1.0, floor)
    assert s.placed_priority_demand >= floor or (s.warm and s.floor_shortfall <= warm_floor_gap)
    assert s.placed_workloads == sum(1 for d in plan.workloads.values() if d.phase == PHASE_PLACED)
    assert all(getattr(s, name) >= 0 for name in TIMING_FIELDS)


# --------------------------------------------------------------------------- stored statuses
# Checks of what the operator left in the API server: the MeshWorkload statuses as
# stored, against the AIFactory / EdgeFleet / MeshWorkload manifests as stored (the
# API server has applied the CRD defaults), in real units, re-derived here without the
# engine or the controller's models. Latency targets are not re-derived (that needs the
# topology graph's shortest paths); everything else a placement must respect is.
import datetime as _dt  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from typing import Any  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

_STATUS_PHASES = ("Placed", "Unschedulable", "Preempted")


def _clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def fleet_online_devices(spec: Mapping[str, Any], at: _dt.datetime) -> int:
    """devices x optInRatio x onlineRatio at ``at`` (floored): the best window open at
    that local time, 1.0 without windows, 0 outside every window."""
    windows = spec.get("availability") or []
    ratio = 0.0 if windows else 1.0
    for w in windows:
        local = at.astimezone(ZoneInfo(w.get("timezone", "UTC")))
        now, start, end = local.hour * 60 + local.minute, _clock_minutes(w["start"]), _clock_minutes(w["end"])
        inside = start <= now < end if start < end else (now >= start or now < end)
        if inside:
            ratio = max(ratio, float(w["onlineRatio"]))
    return int(math.floor(spec["devices"] * spec["optInRatio"] * ratio + 1e-6))


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def status_violations(
    objects: Iterable[Mapping[str, Any]], at: _dt.datetime | None, workloads: Iterable[str] | None = None
) -> list[str]:
    """Every rule the stored statuses break, one line each (empty: all hold).

    ``objects`` are AIFactory, EdgeFleet and MeshWorkload objects as the API server
    returns them (``kubectl get -o json`` items, ``kind`` set). Capacity is checked over
    the statuses of ALL the workloads given; the per-workload rules (phase, demand,
    sites, countries, fleets, memory, models) for those of ``workloads`` (keys
    ``namespace/name``; default all). ``at`` is the time the operator plans for: fleets'
    online devices are checked at that time; ``None`` skips that one check (fleet draw
    and cordons are still checked). Rules:

    - a workload solved for its current spec (``observedGeneration == generation``) is
      Placed with assignments, or Unschedulable/Preempted with a message and none;
    - placed whole: the device demand exactly, the token demand met (real rates) with
      no surplus device; on at most ``maxSites`` distinct sites (1 unless splittable);
      training as a gang on one factory; fleets only with ``allowFleets``; countries
      allowed and not denied; devices of an accepted model with enough memory; no
      cordoned site; each site and model at most once;
    - per factory pool, devices <= count; per factory, facility power (devices x watts
      x PUE) <= firm + max(0, flexible - curtailed), and non-interruptible power <= firm;
    - per fleet, devices <= online devices at ``at``, draw (devices x watts) <= maxFleetMW.
    """
    factories: dict[str, Mapping[str, Any]] = {}
    fleets: dict[str, Mapping[str, Any]] = {}
    all_workloads: dict[str, Mapping[str, Any]] = {}
    for obj in objects:
        {"AIFactory": factories, "EdgeFleet": fleets, "MeshWorkload": all_workloads}[obj["kind"]][_key(obj)] = obj
    chosen = set(all_workloads) if workloads is None else set(workloads)
    bad: list[str] = []
    pool_used: dict[tuple[str, str], int] = {}
    site_w: dict[str, float] = {}
    site_ni_w: dict[str, float] = {}
    bad.extend(f"{key}: not found" for key in sorted(chosen - set(all_workloads)))
    for key in sorted(all_workloads):
        obj = all_workloads[key]
        spec, status = obj["spec"], obj.get("status") or {}
        checked = key in chosen
        phase, assignments = status.get("phase"), status.get("assignments") or []
        if checked:
            if status.get("observedGeneration") != obj["metadata"].get("generation"):
                bad.append(f"{key}: observedGeneration {status.get('observedGeneration')} "
                           f"!= generation {obj['metadata'].get('generation')}")
            if phase not in _STATUS_PHASES:
                bad.append(f"{key}: phase {phase!r}")
            elif phase == "Placed" and not assignments:
                bad.append(f"{key}: Placed without assignments")
            elif phase != "Placed" and (assignments or not status.get("message")):
                bad.append(f"{key}: {phase} with {len(assignments)} assignments, message {status.get('message')!r}")
        if phase != "Placed":
            continue  # an Unschedulable or Preempted workload holds nothing
        problems: list[str] = []
        placement = spec.get("placement") or {}
        sovereignty = spec.get("sovereignty") or {}
        allowed, denied = sovereignty.get("allowedCountries") or [], sovereignty.get("deniedCountries") or []
        models = spec.get("acceleratorModels") or []
        sites = list(dict.fromkeys(a["site"] for a in assignments))
        max_sites = placement.get("maxSites", 1) if placement.get("splittable") else 1
        if len(sites) > max_sites:
            problems.append(f"{len(sites)} sites > maxSites {max_sites}")
        if len({(a["site"], a["acceleratorModel"]) for a in assignments}) != len(assignments):
            problems.append("a site and model twice")
        if spec["type"] == "training" and len(assignments) != 1:
            problems.append(f"training split in {len(assignments)} assignments")
        if status.get("sites") != ",".join(sites):
            problems.append(f"sites {status.get('sites')!r} != {','.join(sites)!r}")
        supply, devices, rates = 0.0, 0, []
        for a in assignments:
            site, model, n = a["site"], a["acceleratorModel"], int(a["devices"])
            if n <= 0:
                problems.append(f"{n} devices at {site}")
            if site in factories:
                fspec = factories[site]["spec"]
                pool = next((p for p in fspec["acceleratorPools"] if p["model"] == model), None)
                if a.get("kind") != "AIFactory" or pool is None:
                    problems.append(f"{site}: no {model} pool in an AIFactory (kind {a.get('kind')})")
                    continue
                watts = pool["wattsPerDevice"] * fspec["power"]["pue"]
                rate, memory, country, cordoned = (pool["tokensPerSecondPerDevice"], pool["memoryGiB"],
                                                   fspec["country"], fspec.get("cordoned", False))
            elif site in fleets:
                fspec = fleets[site]["spec"]
                per = fspec["perDevice"]
                if a.get("kind") != "EdgeFleet" or per["acceleratorModel"] != model:
                    problems.append(f"{site}: fleet of {per['acceleratorModel']}, assigned {model} ({a.get('kind')})")
                    continue
                if not placement.get("allowFleets"):
                    problems.append(f"on fleet {site} without allowFleets")
                if spec["type"] == "training":
                    problems.append(f"training on fleet {site}")
                watts = per["watts"]
                rate, memory, country, cordoned = (per["tokensPerSecond"], per["memoryGiB"], fspec["country"],
                                                   fspec.get("cordoned", False))
            else:
                problems.append(f"on {site}, which does not exist")
                continue
            if cordoned:
                problems.append(f"on cordoned {site}")
            if models and model not in models:
                problems.append(f"{model} at {site} not in acceleratorModels {models}")
            if memory < spec.get("minMemoryGiB", 0.0):
                problems.append(f"{memory} GiB at {site} < minMemoryGiB {spec.get('minMemoryGiB')}")
            if allowed and country not in allowed:
                problems.append(f"{site} in {country}, not in allowedCountries {allowed}")
            if country in denied:
                problems.append(f"{site} in denied {country}")
            if abs(a.get("tokensPerSecond", 0.0) - n * rate) > 1e-3 + 1e-9 * n * rate:
                problems.append(f"{site}: tokensPerSecond {a.get('tokensPerSecond')} != {n} x {rate}")
            if abs(a.get("powerMW", 0.0) - n * watts / 1e6) > (n + 100) * 1e-6:
                problems.append(f"{site}: powerMW {a.get('powerMW')} != {n} x {watts} W")
            supply += n * rate
            devices += n
            rates.append(rate)
            pool_used[(site, model)] = pool_used.get((site, model), 0) + n
            site_w[site] = site_w.get(site, 0.0) + n * watts
            if not spec.get("interruptible", False):
                site_ni_w[site] = site_ni_w.get(site, 0.0) + n * watts
        if spec.get("accelerators") is not None:
            if devices != spec["accelerators"]:
                problems.append(f"{devices} devices for a demand of {spec['accelerators']}")
        else:
            demand = float(spec["tokensPerSecond"])
            if supply < demand * (1 - 1e-9):
                problems.append(f"{supply:.3f} tokens/s for a demand of {demand:.3f}")
            elif rates and supply - min(rates) >= demand + MILLI * devices:
                problems.append(f"{supply:.3f} tokens/s for a demand of {demand:.3f}: a surplus device")
        if checked:
            bad.extend(f"{key}: {p}" for p in problems)
    for (site, model), n in sorted(pool_used.items()):
        if site in factories:
            count = sum(p["count"] for p in factories[site]["spec"]["acceleratorPools"] if p["model"] == model)
            if n > count:
                bad.append(f"AIFactory {site}: {n} {model} devices assigned > {count}")
        elif site in fleets and at is not None:
            online = fleet_online_devices(fleets[site]["spec"], at)
            if n > online:
                bad.append(f"EdgeFleet {site}: {n} devices assigned > {online} online at {at.isoformat()}")
    for site, used in sorted(site_w.items()):
        if site in factories:
            power = factories[site]["spec"]["power"]
            firm, flexible = power["firmMW"], power.get("flexibleMW", 0.0)
            usable = firm + max(0.0, flexible - power.get("curtailedMW", 0.0))
            if used > usable * 1e6 + 1.0:
                bad.append(f"AIFactory {site}: {used / 1e6:.6f} MW assigned > usable {usable:.6f} MW")
            if site_ni_w.get(site, 0.0) > firm * 1e6 + 1.0:
                bad.append(f"AIFactory {site}: {site_ni_w[site] / 1e6:.6f} MW non-interruptible > firm {firm:.6f} MW")
        elif site in fleets:
            cap = fleets[site]["spec"]["maxFleetMW"]
            if used > cap * 1e6 + 1.0:
                bad.append(f"EdgeFleet {site}: {used / 1e6:.6f} MW drawn > maxFleetMW {cap:.6f}")
    return bad


def check_statuses(
    objects: Iterable[Mapping[str, Any]], at: _dt.datetime | None, workloads: Iterable[str] | None = None
) -> None:
    """Assert :func:`status_violations` finds nothing (and list what it found)."""
    bad = status_violations(objects, at, workloads)
    assert not bad, f"{len(bad)} violations:\n" + "\n".join(bad[:50])
