"""Seeded synthetic mesh generator for the benchmarks (and the property tests).

``synthetic_mesh(workloads, sites, seed)`` returns a :class:`placement.problem.Mesh`
with realistic shapes: about 10% of sites are factories (a few huge, heavy-tailed
power, 1-3 accelerator pools, some flexible power, a few curtailed), the rest edge
fleets (vehicles, robots, home clusters, with night/day availability windows in
local time zones); regions on a few continents with inter-region links; workloads
mostly inference (token demand, user regions, latency limits), some training (gang,
factory only), fine-tuning and batch; a sovereignty mix (allowed-country lists,
EU-style groups, denials). Same seed, same mesh.

``family_mesh(family, workloads, sites, seed)`` reshapes it into the harder families
of :data:`FAMILIES` (scarce power, pools sharing power, gangs, conflicting sovereignty
and latency, fleets all online or all offline) for the property tests and
``bench.families``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from controller.api.resources import API_VERSION
from placement.problem import (
    AcceleratorPool,
    AvailabilityWindow,
    FactorySite,
    FleetSite,
    Link,
    Mesh,
    UserRegion,
    WorkloadDemand,
)

# (region, country, timezone, continent)
REGIONS = [
    ("us-east", "US", "America/New_York", "na"),
    ("us-west", "US", "America/Los_Angeles", "na"),
    ("us-south", "US", "America/Chicago", "na"),
    ("ca-central", "CA", "America/Toronto", "na"),
    ("br-south", "BR", "America/Sao_Paulo", "sa"),
    ("eu-west", "IE", "Europe/Dublin", "eu"),
    ("eu-central", "DE", "Europe/Berlin", "eu"),
    ("eu-north", "SE", "Europe/Stockholm", "eu"),
    ("fr-paris", "FR", "Europe/Paris", "eu"),
    ("uk-london", "GB", "Europe/London", "eu"),
    ("in-mumbai", "IN", "Asia/Kolkata", "as"),
    ("sg", "SG", "Asia/Singapore", "as"),
    ("jp-tokyo", "JP", "Asia/Tokyo", "as"),
    ("kr-seoul", "KR", "Asia/Seoul", "as"),
    ("au-sydney", "AU", "Australia/Sydney", "oc"),
    ("me-uae", "AE", "Asia/Dubai", "as"),
]
EU = ("IE", "DE", "SE", "FR")
MODELS = [
    # model, watts, tokens/s per device, memory GiB
    ("gb200", 1200.0, 5200.0, 192.0),
    ("h200", 700.0, 3000.0, 141.0),
    ("h100", 700.0, 2400.0, 80.0),
    ("mi300x", 750.0, 2600.0, 192.0),
    ("l40s", 350.0, 900.0, 48.0),
]
FLEET_CLASSES = [
    # class, model, watts, tokens/s, memory, window (start, end), ratio
    ("vehicle", "orin", 900.0, 180.0, 32.0, (22, 6), 0.7),
    ("robot", "thor", 600.0, 260.0, 64.0, (20, 5), 0.6),
    ("home-cluster", "rtx5090", 650.0, 700.0, 32.0, (0, 8), 0.5),
    ("drone", "jetson", 60.0, 25.0, 8.0, (12, 18), 0.4),
]


def _continent_latency(a: str, b: str) -> float:
    if a == b:
        return 12.0
    pair = {a, b}
    if pair == {"na", "eu"}:
        return 80.0
    if pair == {"na", "sa"}:
        return 120.0
    if pair == {"eu", "as"}:
        return 140.0
    if pair == {"na", "as"}:
        return 150.0
    if "oc" in pair:
        return 160.0
    return 190.0


def synthetic_mesh(
    workloads: int, sites: int, seed: int = 0, at: dt.datetime | None = None, load: float = 1.3,
    factory_share: float = 0.1,
) -> Mesh:
    rng = np.random.default_rng(seed)
    at = at or dt.datetime(2025, 6, 1, 23, 30, tzinfo=dt.UTC)
    n_fact = max(1, int(round(sites * factory_share)))
    n_fleet = max(0, sites - n_fact)
    factories = []
    for i in range(n_fact):
        r, country, tz, cont = REGIONS[rng.integers(len(REGIONS))]
        # heavy tail: most 5-50 MW, a few near 1 GW
        firm = float(min(1000.0, rng.lognormal(mean=3.0, sigma=1.2)))
        flex = float(firm * rng.uniform(0.0, 0.5))
        # a grid event takes 20-100% of the flexible power (never more: it is all it can take)
        curt = float(flex * rng.uniform(0.2, 1.0)) if rng.random() < 0.15 else 0.0
        pue = float(rng.uniform(1.08, 1.5))
        pools = []
        budget_w = (firm + flex) * 1e6 / pue
        for pi in rng.choice(len(MODELS), size=int(rng.integers(1, 4)), replace=False):
            m, watts, tps, mem = MODELS[pi]
            count = max(8, int(budget_w / watts * rng.uniform(0.3, 0.7)))
            pools.append(AcceleratorPool(m, count, watts, tps * rng.uniform(0.9, 1.1), mem))
        links = []
        for r2, _, _, cont2 in REGIONS:
            if r2 != r and (cont2 == cont or rng.random() < 0.25):
                base = _continent_latency(cont, cont2)
                links.append(Link(r2, float(base * rng.uniform(0.6, 1.2)), float(rng.choice([100, 400]))))
        factories.append(
            FactorySite(
                name=f"factory-{i}",
                region=r,
                country=country,
                firm_mw=firm,
                flexible_mw=flex,
                curtailed_mw=curt,
                pue=pue,
                price_per_mwh=float(rng.uniform(25, 140)),
                carbon_grams_per_kwh=float(rng.choice([20, 60, 200, 400, 650])),
                pools=tuple(pools),
                links=tuple(links),
                cordoned=bool(rng.random() < 0.02),
            )
        )
    fleets = []
    for i in range(n_fleet):
        r, country, tz, cont = REGIONS[rng.integers(len(REGIONS))]
        cls, model, watts, tps, mem, (s, e), ratio = FLEET_CLASSES[rng.integers(len(FLEET_CLASSES))]
        devices = max(1, int(rng.lognormal(mean=7.0, sigma=1.3)))
        fleets.append(
            FleetSite(
                name=f"fleet-{i}",
                region=r,
                country=country,
                device_class=cls,
                devices=devices,
                opt_in_ratio=float(rng.uniform(0.2, 0.9)),
                accelerator_model=model,
                tokens_per_second_per_device=tps,
                watts_per_device=watts,
                memory_gib=mem,
                availability=(AvailabilityWindow(dt.time(s), dt.time(e), tz, ratio),)
                if rng.random() < 0.9
                else (),
                max_fleet_mw=float(devices * watts / 1e6 * rng.uniform(0.3, 1.0)),
                uplink_latency_ms=float(rng.uniform(15, 60)),
                uplink_bandwidth_mbps=float(rng.uniform(20, 200)),
                links=(),
                price_per_mwh=float(rng.uniform(80, 250)),
                carbon_grams_per_kwh=float(rng.choice([50, 250, 450])),
                cordoned=bool(rng.random() < 0.02),
            )
        )
    # total capacity, to size demand so the mesh is contended (~ demand 1.3x supply)
    wl = []
    for i in range(workloads):
        r, country, tz, cont = REGIONS[rng.integers(len(REGIONS))]
        t = rng.choice(["inference", "training", "fine-tuning", "batch"], p=[0.6, 0.08, 0.12, 0.2])
        sov = rng.random()
        allowed: tuple[str, ...] = ()
        denied: tuple[str, ...] = ()
        if sov < 0.2:
            allowed = (country,)
        elif sov < 0.3:
            allowed = EU
        elif sov < 0.35:
            denied = ("AE", "SG")
        users: tuple[UserRegion, ...] = ()
        max_lat = None
        if t == "inference":
            users = (UserRegion(r, 1.0),)
            if rng.random() < 0.4:  # a second user region, never the first again
                others = [region for region, *_ in REGIONS if region != r]
                r2 = others[rng.integers(len(others))]
                users = users + (UserRegion(r2, float(rng.uniform(0.1, 0.8))),)
            max_lat = float(rng.choice([40.0, 80.0, 120.0, 200.0]))
        models: tuple[str, ...] = ()
        if t == "training":
            models = tuple(m[0] for m in MODELS[:3]) if rng.random() < 0.7 else ()
            acc = int(rng.choice([64, 128, 256, 512, 1024, 2048]))
            demand = {"accelerators": acc}
        elif t == "fine-tuning":
            demand = {"accelerators": int(rng.choice([8, 16, 32, 64]))}
        else:
            demand = {"tokens_per_second": float(rng.lognormal(mean=9.5, sigma=1.0))}
        splittable = t in ("inference", "batch") and rng.random() < 0.5
        wl.append(
            WorkloadDemand(
                key=f"ns-{i % 50}/wl-{i}",
                type=str(t),
                accelerator_models=models,
                min_memory_gib=float(rng.choice([0.0, 16.0, 40.0, 80.0], p=[0.4, 0.3, 0.2, 0.1])),
                max_latency_ms=max_lat,
                users=users,
                allowed_countries=allowed,
                denied_countries=denied,
                allow_fleets=t in ("inference", "batch") and rng.random() < 0.7,
                splittable=bool(splittable),
                max_sites=int(rng.integers(2, 5)) if splittable else 1,
                interruptible=t in ("batch", "training") and rng.random() < 0.6,
                priority=int(rng.choice([0, 100, 1000, 10_000, 100_000], p=[0.3, 0.3, 0.2, 0.15, 0.05])),
                **demand,
            )
        )
    # scale demand so the mesh is contended: total demand ~ load x supply (tokens/s)
    mesh = Mesh(factories=tuple(factories), fleets=tuple(fleets), workloads=(), at=at)
    from placement.capacity import fleet_effective_devices

    supply = sum(p.count * p.tokens_per_second_per_device for f in factories for p in f.pools)
    supply += sum(fleet_effective_devices(f, at) * f.tokens_per_second_per_device for f in fleets)
    ref = 2400.0
    raw = sum(w.tokens_per_second or (w.accelerators * ref) for w in wl)
    scale = load * supply / raw if raw > 0 else 1.0
    scaled = []
    for w in wl:
        if w.tokens_per_second is not None:
            scaled.append(replace(w, tokens_per_second=w.tokens_per_second * scale))
        else:
            scaled.append(replace(w, accelerators=max(1, int(round(w.accelerators * scale)))))
    return replace(mesh, workloads=tuple(scaled))


def perturb(mesh: Mesh, fraction: float = 0.01, seed: int = 1) -> Mesh:
    """Change ``fraction`` of the workloads (demand x1.25, new priority)."""
    rng = np.random.default_rng(seed)
    W = len(mesh.workloads)
    idx = set(rng.choice(W, size=max(1, int(W * fraction)), replace=False).tolist()) if W else set()
    out = []
    for i, w in enumerate(mesh.workloads):
        if i in idx:
            if w.accelerators is not None:
                w = replace(w, accelerators=max(1, int(w.accelerators * 1.25)))
            else:
                w = replace(w, tokens_per_second=w.tokens_per_second * 1.25)
            w = replace(w, priority=int(rng.choice([0, 100, 1000, 10_000])))
        out.append(w)
    return replace(mesh, workloads=tuple(out))



# --------------------------------------------------------------------------- mesh families
# Harder shapes than the base mesh, each seeded, built from synthetic_mesh and reshaped by
# a second generator seeded with (seed, family), so the base mesh of a seed never changes.
FAMILIES = ("base", "scarce", "shared-power", "gangs", "sovereignty", "night", "day")
_TZ = {region: tz for region, _, tz, _ in REGIONS}
_COUNTRY = {region: country for region, country, _, _ in REGIONS}
_CONTINENT = {region: cont for region, _, _, cont in REGIONS}


def usable_token_supply(mesh: Mesh) -> float:
    """Tokens/s the mesh could serve within its power: each factory's usable power filled
    with its most token-per-watt pools first, each fleet's online devices within its cap."""
    from placement.capacity import factory_usable_mw, fleet_effective_devices

    supply = 0.0
    for f in mesh.factories:
        if f.cordoned:
            continue
        left_w = factory_usable_mw(f) * 1e6
        for p in sorted(f.pools, key=lambda p: -p.tokens_per_second_per_device / p.watts_per_device):
            n = min(p.count, int(left_w // (p.watts_per_device * f.pue)))
            supply += n * p.tokens_per_second_per_device
            left_w -= n * p.watts_per_device * f.pue
    for fl in mesh.fleets:
        if fl.cordoned:
            continue
        n = fleet_effective_devices(fl, mesh.at)
        if fl.watts_per_device > 0 and np.isfinite(fl.max_fleet_mw):
            n = min(n, int(fl.max_fleet_mw * 1e6 // fl.watts_per_device))
        supply += n * fl.tokens_per_second_per_device
    return supply


def _rescale(workloads: list[WorkloadDemand], target_tokens: float) -> list[WorkloadDemand]:
    """Scale every demand so the total (devices at 2,400 tokens/s each) is ``target_tokens``."""
    raw = sum(w.tokens_per_second or (w.accelerators or 0) * 2400.0 for w in workloads)
    scale = target_tokens / raw if raw > 0 and target_tokens > 0 else 1.0
    out = []
    for w in workloads:
        if w.tokens_per_second is not None:
            out.append(replace(w, tokens_per_second=w.tokens_per_second * scale))
        else:
            out.append(replace(w, accelerators=max(1, int(round((w.accelerators or 1) * scale)))))
    return out


def _window_around(at: dt.datetime, tz: str, open_now: bool, ratio: float) -> AvailabilityWindow:
    """A daily window in ``tz`` that contains the local time of ``at`` (3 h before to 5 h
    after) or misses it (opens 2 h after, closes 8 h after)."""
    local = at.astimezone(ZoneInfo(tz))
    hour = local.hour
    start, end = ((hour - 3) % 24, (hour + 5) % 24) if open_now else ((hour + 2) % 24, (hour + 8) % 24)
    return AvailabilityWindow(dt.time(start), dt.time(end), tz, ratio)


def _scarce(mesh: Mesh, rng: np.random.Generator) -> Mesh:
    """Demand twice the usable supply, a grid event on half the factories (50-100% of a
    flexible budget of 20-50% of firm), half the fleets offline at the plan's time."""
    factories = list(mesh.factories)
    for i in rng.choice(len(factories), size=(len(factories) + 1) // 2, replace=False):
        f = factories[i]
        flex = f.flexible_mw if f.flexible_mw > 0 else f.firm_mw * float(rng.uniform(0.2, 0.5))
        factories[i] = replace(f, flexible_mw=flex, curtailed_mw=flex * float(rng.uniform(0.5, 1.0)))
    fleets = list(mesh.fleets)
    if fleets:
        for i in rng.choice(len(fleets), size=len(fleets) // 2, replace=False):
            fl = fleets[i]
            fleets[i] = replace(fl, availability=(_window_around(mesh.at, _TZ[fl.region], False, 0.6),))
    out = replace(mesh, factories=tuple(factories), fleets=tuple(fleets))
    return replace(out, workloads=tuple(_rescale(list(out.workloads), 2.0 * usable_token_supply(out))))


def _shared_power(mesh: Mesh, rng: np.random.Generator) -> Mesh:
    """3-5 heterogeneous pools per factory, each alone able to use 50-100% of the
    factory's usable power: the pools compete for one power budget. Demand 1.5x the
    usable supply."""
    from placement.capacity import factory_usable_mw

    factories = []
    for f in mesh.factories:
        budget_w = factory_usable_mw(f) * 1e6 / f.pue
        pools = []
        for pi in rng.choice(len(MODELS), size=int(rng.integers(3, 6)), replace=False):
            m, watts, tps, mem = MODELS[pi]
            count = max(8, int(budget_w / watts * rng.uniform(0.5, 1.0)))
            pools.append(AcceleratorPool(m, count, watts, tps * float(rng.uniform(0.9, 1.1)), mem))
        factories.append(replace(f, pools=tuple(pools)))
    out = replace(mesh, factories=tuple(factories))
    return replace(out, workloads=tuple(_rescale(list(out.workloads), 1.5 * usable_token_supply(out))))


def _gangs(mesh: Mesh, rng: np.random.Generator) -> Mesh:
    """One priority for all; 1 in 25 workloads a training gang of 30-80% of the largest
    pool, the rest small inference (tokens), together 0.8x the usable supply."""
    largest = max((p.count for f in mesh.factories for p in f.pools), default=8)
    supply = usable_token_supply(mesh)
    n = len(mesh.workloads)
    big = set(rng.choice(n, size=max(1, n // 25), replace=False).tolist()) if n else set()
    small, gangs = [], []
    for i, w in enumerate(mesh.workloads):
        if i in big:
            gangs.append(replace(
                w, type="training", accelerators=max(8, int(largest * rng.uniform(0.3, 0.8))), tokens_per_second=None,
                users=(), max_latency_ms=None, allow_fleets=False, splittable=False, max_sites=1,
                interruptible=bool(rng.random() < 0.3), priority=100, accelerator_models=(), min_memory_gib=0.0))
        else:
            users = w.users or (UserRegion(REGIONS[int(rng.integers(len(REGIONS)))][0], 1.0),)
            small.append(replace(
                w, type="inference", accelerators=None, tokens_per_second=float(rng.lognormal(7.5, 0.8)),
                users=users, max_latency_ms=w.max_latency_ms or 120.0, priority=100, interruptible=False,
                accelerator_models=()))
    small = _rescale(small, 0.8 * supply)
    it_small, it_big = iter(small), iter(gangs)
    ordered = tuple(next(it_big) if i in big else next(it_small) for i in range(n))
    return replace(mesh, workloads=ordered)


def _sovereignty(mesh: Mesh, rng: np.random.Generator) -> Mesh:
    """Every workload held to one country (its users' home), the EU group or two named
    countries; inference also serves a second region on another continent 60% of the
    time, within 30-120 ms: country and latency sets that often cannot both hold."""
    countries = sorted({c for _, c, _, _ in REGIONS})
    out = []
    for w in mesh.workloads:
        home = w.users[0].region if w.users else REGIONS[int(rng.integers(len(REGIONS)))][0]
        pick = rng.random()
        if pick < 0.5:
            allowed: tuple[str, ...] = (_COUNTRY[home],)
        elif pick < 0.75:
            allowed = EU
        else:
            allowed = tuple(sorted(set(rng.choice(countries, size=2, replace=False).tolist())))
        users, max_lat = w.users, w.max_latency_ms
        if w.type == "inference":
            users = (UserRegion(home, 1.0),)
            if rng.random() < 0.6:
                far = [r for r, *_ in REGIONS if _CONTINENT[r] != _CONTINENT[home]]
                users += (UserRegion(far[int(rng.integers(len(far)))], float(rng.uniform(0.2, 1.0))),)
            max_lat = float(rng.choice([30.0, 50.0, 80.0, 120.0]))
        out.append(replace(w, allowed_countries=allowed, denied_countries=(), users=users, max_latency_ms=max_lat))
    return replace(mesh, workloads=tuple(out))


def _fleet_windows(mesh: Mesh, rng: np.random.Generator, open_now: bool) -> Mesh:
    """Every fleet gets one daily window in its region's zone that contains the plan's
    time (night: cars and robots charging, online) or misses it (day: offline)."""
    fleets = tuple(
        replace(fl, availability=(_window_around(mesh.at, _TZ[fl.region], open_now, float(rng.uniform(0.5, 0.9))),))
        for fl in mesh.fleets
    )
    return replace(mesh, fleets=fleets)


def family_mesh(family: str, workloads: int, sites: int, seed: int = 0) -> Mesh:
    """A seeded mesh of one of :data:`FAMILIES` (same arguments, same mesh).

    ``base`` is :func:`synthetic_mesh`; the others reshape it (``shared-power`` starts
    from 30% factories instead of 10%, so there are several to share out):
    ``scarce``, ``shared-power``, ``gangs``, ``sovereignty``, ``night`` (every fleet's
    window open at the plan's time), ``day`` (every fleet's window closed).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown mesh family {family!r}; one of {FAMILIES}")
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    if family == "shared-power":
        return _shared_power(synthetic_mesh(workloads, sites, seed=seed, factory_share=0.3), rng)
    mesh = synthetic_mesh(workloads, sites, seed=seed)
    if family == "scarce":
        return _scarce(mesh, rng)
    if family == "gangs":
        return _gangs(mesh, rng)
    if family == "sovereignty":
        return _sovereignty(mesh, rng)
    if family in ("night", "day"):
        return _fleet_windows(mesh, rng, family == "night")
    return mesh

def _links(links: tuple[Link, ...]) -> list[dict[str, Any]]:
    return [{"to": k.to, "latencyMs": k.latency_ms, "bandwidthGbps": k.bandwidth_gbps} for k in links]


def to_manifests(mesh: Mesh) -> list[dict[str, Any]]:
    """The mesh as the AIFactory, EdgeFleet and MeshWorkload objects a user would apply
    (so a synthetic mesh can be checked by ``meshctl validate`` or sent to a cluster)."""
    objects: list[dict[str, Any]] = []
    for f in mesh.factories:
        spec: dict[str, Any] = {
            "region": f.region, "country": f.country,
            "power": {"firmMW": f.firm_mw, "flexibleMW": f.flexible_mw, "curtailedMW": f.curtailed_mw, "pue": f.pue,
                      "pricePerMWh": f.price_per_mwh, "carbonGramsPerKWh": f.carbon_grams_per_kwh},
            "acceleratorPools": [
                {"model": p.model, "count": p.count, "wattsPerDevice": p.watts_per_device,
                 "tokensPerSecondPerDevice": p.tokens_per_second_per_device, "memoryGiB": p.memory_gib}
                for p in f.pools
            ],
            "links": _links(f.links), "cordoned": f.cordoned,
        }
        objects.append({"apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": f.name}, "spec": spec})
    for s in mesh.fleets:
        spec = {
            "region": s.region, "country": s.country, "deviceClass": s.device_class, "devices": s.devices,
            "optInRatio": s.opt_in_ratio,
            "perDevice": {"acceleratorModel": s.accelerator_model, "tokensPerSecond": s.tokens_per_second_per_device,
                          "watts": s.watts_per_device, "memoryGiB": s.memory_gib},
            "availability": [
                {"start": w.start.strftime("%H:%M"), "end": w.end.strftime("%H:%M"), "timezone": w.timezone,
                 "onlineRatio": w.online_ratio}
                for w in s.availability
            ],
            "maxFleetMW": s.max_fleet_mw,
            "uplink": {"latencyMs": s.uplink_latency_ms, "bandwidthMbps": s.uplink_bandwidth_mbps},
            "links": _links(s.links), "pricePerMWh": s.price_per_mwh, "carbonGramsPerKWh": s.carbon_grams_per_kwh,
            "cordoned": s.cordoned,
        }
        objects.append({"apiVersion": API_VERSION, "kind": "EdgeFleet", "metadata": {"name": s.name}, "spec": spec})
    for w in mesh.workloads:
        namespace, name = w.key.split("/", 1)
        spec = {"type": w.type, "minMemoryGiB": w.min_memory_gib, "interruptible": w.interruptible,
                "priority": w.priority,
                "placement": {"allowFleets": w.allow_fleets, "splittable": w.splittable, "maxSites": w.max_sites}}
        if w.accelerators is not None:
            spec["accelerators"] = w.accelerators
        else:
            spec["tokensPerSecond"] = w.tokens_per_second
        if w.accelerator_models:
            spec["acceleratorModels"] = list(w.accelerator_models)
        if w.max_latency_ms is not None:
            spec["latency"] = {"maxMs": w.max_latency_ms, "users": [{"region": u.region, "weight": u.weight} for u in w.users]}
        if w.allowed_countries or w.denied_countries:
            spec["sovereignty"] = {"allowedCountries": list(w.allowed_countries),
                                   "deniedCountries": list(w.denied_countries)}
        objects.append({"apiVersion": API_VERSION, "kind": "MeshWorkload",
                        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
    return objects
