"""A kube-scheduler-style placer, written apart from the engine, as the honest baseline.

What a user gets without meshplane's joint solve: kube-scheduler's loop run over the
mesh's site columns (a factory's accelerator pool, or a fleet) as if they were nodes.

* **Queue**: priority (high first), then creation order (the order of
  ``mesh.workloads``, as ``creationTimestamp`` would be).
* **Filter**: cordon, training only on factories, ``allowFleets``, allowed / denied
  countries, latency (shortest path in the topology from every user region of weight
  > 0 <= ``maxMs``; unreachable fails), accelerator model, memory, a fleet's online
  devices at the plan's time, and room now (devices, the site's usable power, firm
  power for non-interruptible load, a fleet's ``maxFleetMW``).
* **Score**: LeastAllocated: the mean of the free device fraction and the free power
  fraction left after binding; ties go to the first column in mesh order.
* **Bind** whole or nothing: a workload that is not splittable (and every training
  gang) takes one column; a splittable one fills the best-scored sites in turn (each
  site's pools best first) up to ``maxSites`` sites, or is not placed at all.

It reads only the engine's *input* types (:mod:`placement.problem`) and computes
everything else itself, from the rules in docs/placement.md ("Filters", "Capacity"):
facility power = watts x PUE, usable = firm + max(0, flexible - curtailed),
non-interruptible load <= firm, fleet devices = floor(devices x optIn x
onlineRatio(at)), fleet draw <= maxFleetMW. It uses the engine's documented integer
units (per-device facility watts rounded up to a whole watt, budgets down, per-device
tokens/s down to milli-tokens, demand up), so that the baseline, the engine and the
exact reference (:mod:`bench.exact`) solve the same problem: a real-unit plan could
otherwise fit a device the engine's conservative rounding cannot.

:func:`priority_demand` scores a plan as ``SolveStats.placed_priority_demand`` does
(placement/snapshot.py, ``build``: value = (priority + 1) x demand units, units =
devices, or ``max(1, ceil(tokens/s / ref - 1e-9))`` with ``ref`` the median per-device
tokens/s over the columns with a positive rate, in milli-tokens / 1000).

:func:`as_plan` writes a placement as the engine's output dataclasses
(:mod:`placement.decisions`, plain data), so ``tests.support.invariants.check_plan``
can check it like an engine plan.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import networkx as nx

from placement.problem import FactorySite, FleetSite, Mesh, WorkloadDemand

FACTORY, FLEET = "AIFactory", "EdgeFleet"
_EPS = 1e-6


# ------------------------------------------------------------------ the problem, re-derived
@dataclass(frozen=True, slots=True)
class Column:
    """One schedulable unit: a factory's accelerator pool, or a whole fleet."""

    index: int
    site: int  # index into Problem.sites
    site_name: str
    kind: str
    model: str
    country: str
    memory_gib: float
    devices: int  # capacity now (fleets: online at the plan's time)
    watts: int  # facility watts per device, rounded up (x PUE for factories)
    watts_real: float
    tps: float  # tokens/s per device
    tps_milli: int  # rounded down
    cordoned: bool


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    kind: str
    firm_w: float  # non-interruptible budget, whole watts (fleets: the fleet cap; inf = none)
    usable_w: float  # whole budget, whole watts (inf = none)
    columns: tuple[int, ...]


def _budget_w(mw: float) -> float:
    return math.inf if not math.isfinite(mw) else float(math.floor(max(0.0, mw) * 1e6 + _EPS))


def online_devices(fleet: FleetSite, at: dt.datetime) -> int:
    """devices x optIn x the best open window's ratio at ``at`` (its own zone), floored;
    no windows = always 1.0; ``end < start`` wraps midnight; ``start == end`` all day."""
    ratio = 0.0 if fleet.availability else 1.0
    for w in fleet.availability:
        now = at.astimezone(ZoneInfo(w.timezone)).time().replace(tzinfo=None)
        if w.start == w.end:
            inside = True
        elif w.start < w.end:
            inside = w.start <= now < w.end
        else:
            inside = now >= w.start or now < w.end
        if inside:
            ratio = max(ratio, w.online_ratio)
    return int(math.floor(fleet.devices * fleet.opt_in_ratio * ratio + _EPS))


def latencies(mesh: Mesh) -> dict[tuple[str, str], float]:
    """Shortest-path ms from each user region to each site (missing = unreachable).

    Regions and factories are nodes; a factory sits in its region (0 ms) and its links
    join it to other regions, so it carries transit traffic. A fleet is a leaf: reached
    from its region or a link's region (+ the link), always through its uplink.
    """
    g = nx.Graph()
    for f in mesh.factories:
        edges = [(f.region, 0.0)] + [(link.to, link.latency_ms) for link in f.links]
        for region, ms in edges:
            a, b = ("s", f.name), ("r", region)
            if not g.has_edge(a, b) or g[a][b]["ms"] > ms:
                g.add_edge(a, b, ms=float(ms))
    for fl in mesh.fleets:
        g.add_node(("r", fl.region))
        for link in fl.links:
            g.add_node(("r", link.to))
    regions = {u.region for w in mesh.workloads for u in w.users if u.weight > 0}
    out: dict[tuple[str, str], float] = {}
    for region in regions:
        dist = nx.single_source_dijkstra_path_length(g, ("r", region), weight="ms") if ("r", region) in g else {}
        for f in mesh.factories:
            if ("s", f.name) in dist:
                out[(region, f.name)] = dist[("s", f.name)]
        for fl in mesh.fleets:
            best = dist.get(("r", fl.region), math.inf)
            for link in fl.links:
                best = min(best, dist.get(("r", link.to), math.inf) + link.latency_ms)
            if math.isfinite(best):
                out[(region, fl.name)] = best + fl.uplink_latency_ms
    return out


@dataclass(slots=True)
class Problem:
    """The mesh as columns, sites, per-workload feasible columns, needs and values."""

    mesh: Mesh
    columns: list[Column]
    sites: list[Site]
    latency: dict[tuple[str, str], float]
    ref_tps: float
    value: list[int]  # per workload, in mesh order
    feasible: list[list[int]]  # per workload: columns passing the static filters

    @classmethod
    def of(cls, mesh: Mesh) -> Problem:
        columns: list[Column] = []
        sites: list[Site] = []

        def add_factory(f: FactorySite) -> None:
            si = len(sites)
            first = len(columns)
            for p in f.pools:
                columns.append(Column(
                    len(columns), si, f.name, FACTORY, p.model, f.country, p.memory_gib, max(0, p.count),
                    int(math.ceil(p.watts_per_device * f.pue - _EPS)), p.watts_per_device * f.pue,
                    p.tokens_per_second_per_device, int(math.floor(max(0.0, p.tokens_per_second_per_device) * 1e3 + _EPS)),
                    f.cordoned))
            usable = f.firm_mw + max(0.0, f.flexible_mw - f.curtailed_mw)
            sites.append(Site(f.name, FACTORY, _budget_w(f.firm_mw), _budget_w(usable), tuple(range(first, len(columns)))))

        def add_fleet(fl: FleetSite) -> None:
            si = len(sites)
            columns.append(Column(
                len(columns), si, fl.name, FLEET, fl.accelerator_model, fl.country, fl.memory_gib,
                online_devices(fl, mesh.at), int(math.ceil(fl.watts_per_device - _EPS)), fl.watts_per_device,
                fl.tokens_per_second_per_device,
                int(math.floor(max(0.0, fl.tokens_per_second_per_device) * 1e3 + _EPS)), fl.cordoned))
            cap = _budget_w(fl.max_fleet_mw)
            sites.append(Site(fl.name, FLEET, cap, cap, (len(columns) - 1,)))

        for f in mesh.factories:
            add_factory(f)
        for fl in mesh.fleets:
            add_fleet(fl)
        rates = [c.tps_milli for c in columns if c.tps_milli > 0]
        ref = statistics.median(rates) / 1e3 if rates else 1.0
        lat = latencies(mesh)
        value = []
        for w in mesh.workloads:
            units = w.accelerators if w.accelerators is not None else max(1, math.ceil((w.tokens_per_second or 0.0) / ref - 1e-9))
            value.append((w.priority + 1) * units)
        problem = cls(mesh, columns, sites, lat, ref, value, [])
        problem.feasible = [[c.index for c in columns if problem.passes_filters(w, c)] for w in mesh.workloads]
        return problem

    # ---- rules
    def worst_latency(self, w: WorkloadDemand, site: str) -> float:
        users = [u for u in w.users if u.weight > 0]
        return max((self.latency.get((u.region, site), math.inf) for u in users), default=0.0)

    def passes_filters(self, w: WorkloadDemand, c: Column) -> bool:
        """Every rule that does not depend on other workloads (nor on size)."""
        if c.cordoned or (w.type == "training" and c.kind == FLEET) or (c.kind == FLEET and not w.allow_fleets):
            return False
        if (w.allowed_countries and c.country not in w.allowed_countries) or c.country in w.denied_countries:
            return False
        if w.max_latency_ms is not None and not self.worst_latency(w, c.site_name) <= w.max_latency_ms:
            return False
        if w.accelerator_models and c.model not in w.accelerator_models:
            return False
        return c.memory_gib >= w.min_memory_gib and c.devices > 0 and (w.accelerators is not None or c.tps_milli > 0)

    @staticmethod
    def demand_milli(w: WorkloadDemand) -> int:
        return int(math.ceil((w.tokens_per_second or 0.0) * 1e3 - _EPS))

    def need(self, w: WorkloadDemand, c: Column) -> int:
        """Devices of column ``c`` that carry the whole workload."""
        if w.accelerators is not None:
            return w.accelerators
        return -(-self.demand_milli(w) // c.tps_milli)

    def whole(self, w: WorkloadDemand) -> bool:
        return w.type == "training" or not w.splittable or w.max_sites <= 1

    def site_limit(self, w: WorkloadDemand) -> int:
        return 1 if self.whole(w) else w.max_sites

    def budget(self, w: WorkloadDemand, s: Site) -> float:
        """The watts this workload may draw at an empty site (firm only if non-interruptible)."""
        return s.usable_w if w.interruptible else min(s.firm_w, s.usable_w)


# ------------------------------------------------------------------ capacity in use
@dataclass(slots=True)
class Usage:
    devices: list[int]
    watts: list[float]  # per site
    firm_watts: list[float]  # per site, non-interruptible load

    @classmethod
    def empty(cls, p: Problem) -> Usage:
        return cls([0] * len(p.columns), [0.0] * len(p.sites), [0.0] * len(p.sites))

    def room(self, p: Problem, w: WorkloadDemand, c: Column) -> int:
        """Devices of ``c`` this workload could still take (devices and power)."""
        s = p.sites[c.site]
        free_w = s.usable_w - self.watts[c.site]
        if not w.interruptible:
            free_w = min(free_w, s.firm_w - self.firm_watts[c.site])
        by_power = math.inf if not math.isfinite(free_w) else max(0, int(free_w // c.watts)) if c.watts > 0 else math.inf
        return int(min(c.devices - self.devices[c.index], by_power))

    def take(self, p: Problem, w: WorkloadDemand, c: Column, n: int) -> None:
        self.devices[c.index] += n
        self.watts[c.site] += n * c.watts
        if not w.interruptible:
            self.firm_watts[c.site] += n * c.watts

    def free_fraction(self, p: Problem, c: Column, n: int) -> float:
        """LeastAllocated: mean of free devices and free power fractions after ``n`` more."""
        s = p.sites[c.site]
        dev = (c.devices - self.devices[c.index] - n) / c.devices if c.devices else 0.0
        if not math.isfinite(s.usable_w):
            pw = 1.0
        else:
            pw = (s.usable_w - self.watts[c.site] - n * c.watts) / s.usable_w if s.usable_w > 0 else 0.0
        return (dev + pw) / 2.0


# ------------------------------------------------------------------ the scheduler loop
@dataclass(slots=True)
class Placement:
    """Per workload key, its (column index, devices) list; empty = not placed."""

    problem: Problem
    assignments: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def placed(self) -> int:
        return sum(1 for a in self.assignments.values() if a)

    def priority_demand(self) -> int:
        return priority_demand(self.problem, self.assignments)


def priority_demand(p: Problem, assignments: dict[str, list[tuple[int, int]]]) -> int:
    """Sum of (priority + 1) x demand units over the placed workloads (the engine's
    ``SolveStats.placed_priority_demand``)."""
    return sum(v for w, v in zip(p.mesh.workloads, p.value, strict=True) if assignments.get(w.key))


def trim(p: Problem, w: WorkloadDemand, chosen: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop devices a token demand does not need (a later, faster column can make an
    earlier one's last device surplus): fewest tokens/s first, while the demand holds."""
    if w.accelerators is not None:
        return chosen
    need = p.demand_milli(w)
    n = dict(chosen)
    supply = sum(k * p.columns[c].tps_milli for c, k in n.items())
    for c in sorted(n, key=lambda c: (p.columns[c].tps_milli, c)):
        rate = p.columns[c].tps_milli
        drop = min(n[c], (supply - need) // rate)
        n[c] -= drop
        supply -= drop * rate
    return [(c, n[c]) for c, _ in chosen if n[c] > 0]


def schedule(mesh: Mesh) -> Placement:
    """Place the workloads one at a time, kube-scheduler's way (see the module docstring)."""
    p = Problem.of(mesh)
    use = Usage.empty(p)
    out = Placement(p)
    order = sorted(range(len(mesh.workloads)), key=lambda i: (-mesh.workloads[i].priority, i))
    for i in order:
        w = mesh.workloads[i]
        cols = [p.columns[c] for c in p.feasible[i]]
        chosen: list[tuple[int, int]] = []
        if p.whole(w):
            best: tuple[float, int] | None = None
            for c in cols:
                n = p.need(w, c)
                if use.room(p, w, c) >= n:
                    score = use.free_fraction(p, c, n)
                    if best is None or score > best[0]:
                        best = (score, c.index)
            if best is not None:
                chosen = [(best[1], p.need(w, p.columns[best[1]]))]
                use.take(p, w, p.columns[best[1]], chosen[0][1])
        else:
            chosen = _fill(p, use, w, cols)  # takes what it binds
        out.assignments[w.key] = chosen
    return out


def _fill(p: Problem, use: Usage, w: WorkloadDemand, cols: list[Column]) -> list[tuple[int, int]]:
    """A splittable workload: the best-scored sites in turn, up to maxSites; all or nothing."""
    by_site: dict[int, list[Column]] = {}
    for c in cols:
        if use.room(p, w, c) > 0:
            by_site.setdefault(c.site, []).append(c)

    def site_score(si: int) -> float:
        return max(use.free_fraction(p, c, 0) for c in by_site[si])

    ranked = sorted(by_site, key=lambda si: (-site_score(si), si))[: p.site_limit(w)]
    left = w.accelerators if w.accelerators is not None else p.demand_milli(w)
    chosen: list[tuple[int, int]] = []
    for si in ranked:
        for c in sorted(by_site[si], key=lambda c: (-use.free_fraction(p, c, 0), c.index)):
            if left <= 0:
                break
            want = left if w.accelerators is not None else -(-left // c.tps_milli)
            n = min(use.room(p, w, c), want)  # pools of one site share its power: take as we go
            if n > 0:
                chosen.append((c.index, n))
                use.take(p, w, c, n)
                left -= n if w.accelerators is not None else n * c.tps_milli
        if left <= 0:
            kept = dict(trim(p, w, chosen))
            for ci, n in chosen:
                use.take(p, w, p.columns[ci], kept.get(ci, 0) - n)
            return [(ci, kept[ci]) for ci, _ in chosen if ci in kept]
    for ci, n in chosen:  # all or nothing
        use.take(p, w, p.columns[ci], -n)
    return []


# ------------------------------------------------------------------ as the engine's Plan
def as_plan(p: Problem, assignments: dict[str, list[tuple[int, int]]], objective: float | None = None):  # type: ignore[no-untyped-def]
    """The placement as a :class:`placement.decisions.Plan` (decisions with latency
    figures, per-site usage, the counters ``check_plan`` reads)."""
    from placement.decisions import (
        PHASE_PLACED,
        PHASE_UNSCHEDULABLE,
        Assignment,
        Plan,
        PoolUsage,
        SiteUsage,
        SolveStats,
        WorkloadDecision,
    )

    plan = Plan()
    used_w: dict[str, float] = {}
    used_dev: dict[int, int] = {}
    for w in p.mesh.workloads:
        chosen = assignments.get(w.key) or []
        if not chosen:
            plan.workloads[w.key] = WorkloadDecision(w.key, PHASE_UNSCHEDULABLE, message="not placed by the baseline")
            continue
        users = [u for u in w.users if u.weight > 0]
        decision = WorkloadDecision(w.key, PHASE_PLACED)
        for ci, n in chosen:
            c = p.columns[ci]
            ms = [p.latency.get((u.region, c.site_name), math.inf) for u in users]
            known = bool(users) and all(math.isfinite(x) for x in ms)
            decision.assignments.append(Assignment(
                site=c.site_name, kind=c.kind, accelerator_model=c.model, devices=n, tokens_per_second=n * c.tps,
                power_mw=n * c.watts_real / 1e6,
                latency_ms=max(ms) if known else None,
                mean_latency_ms=sum(x * u.weight for x, u in zip(ms, users, strict=True)) / sum(u.weight for u in users)
                if known else None,
            ))
            used_w[c.site_name] = used_w.get(c.site_name, 0.0) + n * c.watts_real
            used_dev[ci] = used_dev.get(ci, 0) + n
        plan.workloads[w.key] = decision
    for s in p.sites:
        plan.sites[s.name] = SiteUsage(
            s.name, s.kind, firm_mw_used=used_w.get(s.name, 0.0) / 1e6, firm_mw_available=s.firm_w / 1e6,
            flexible_mw_used=0.0, flexible_mw_available=max(0.0, s.usable_w - s.firm_w) / 1e6,
            pools=[PoolUsage(p.columns[c].model, used_dev.get(c, 0), p.columns[c].devices) for c in s.columns],
        )
    value = float(priority_demand(p, assignments) if objective is None else objective)
    plan.stats = SolveStats(placed_priority_demand=value,
                            greedy_placed_priority_demand=value,
                            placed_workloads=sum(1 for a in assignments.values() if a),
                            num_workloads=len(p.mesh.workloads))
    return plan


def main(argv: list[str] | None = None) -> None:
    import argparse

    from tests.support.meshes import FAMILIES, family_mesh

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="base", choices=FAMILIES)
    ap.add_argument("--workloads", type=int, default=200)
    ap.add_argument("--sites", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    placement = schedule(family_mesh(a.family, a.workloads, a.sites, a.seed))
    print(f"placed {placement.placed} of {a.workloads}, priority-weighted demand {placement.priority_demand()}")


if __name__ == "__main__":
    main()
