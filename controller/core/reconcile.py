"""The reconcile core: a snapshot of resources in, status objects out.

Pure and shared: the kopf adapter calls it with what the API server holds, and
``meshctl plan`` with manifests read from files, so both print and write exactly the
same statuses. It converts the resource models into the placement engine's plain
data (``placement.problem``), asks for a plan, and turns the decisions back into
``MeshWorkloadStatus`` / ``SiteStatus`` objects. No I/O happens here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from placement.pipeline import plan as placement_plan
from controller.api.models import Assignment, Condition, PoolStatus, PowerStatus, SiteStatus, SolverFigures, MeshWorkloadStatus
from controller.api.resources import AIFactory, EdgeFleet, MeshWorkload
from placement import problem
from placement.decisions import Plan, SiteUsage, WorkloadDecision

# Statuses are written to the API server, where every float is stored as JSON: keep
# them short and stable so that an unchanged plan produces an unchanged status.
_MW_DIGITS = 4
_MS_DIGITS = 2
_RATE_DIGITS = 3


@dataclass(frozen=True)
class Snapshot:
    """Everything one reconcile looks at, with the time the plan is made for."""

    factories: Sequence[AIFactory]
    fleets: Sequence[EdgeFleet]
    workloads: Sequence[MeshWorkload]
    at: dt.datetime


@dataclass
class Outcome:
    """The plan and the status of every resource of the snapshot."""

    plan: Plan
    workloads: dict[str, MeshWorkloadStatus] = field(default_factory=dict)
    factories: dict[str, SiteStatus] = field(default_factory=dict)
    fleets: dict[str, SiteStatus] = field(default_factory=dict)


def _links(links) -> tuple[problem.Link, ...]:
    return tuple(problem.Link(to=l.to, latency_ms=l.latency_ms, bandwidth_gbps=l.bandwidth_gbps) for l in links)


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def factory_site(factory: AIFactory) -> problem.FactorySite:
    spec = factory.spec
    return problem.FactorySite(
        name=factory.metadata.name,
        region=spec.region,
        country=spec.country,
        firm_mw=spec.power.firm_mw,
        flexible_mw=spec.power.flexible_mw,
        curtailed_mw=spec.power.curtailed_mw,
        pue=spec.power.pue,
        price_per_mwh=spec.power.price_per_mwh,
        carbon_grams_per_kwh=spec.power.carbon_grams_per_kwh,
        pools=tuple(
            problem.AcceleratorPool(
                model=p.model,
                count=p.count,
                watts_per_device=p.watts_per_device,
                tokens_per_second_per_device=p.tokens_per_second_per_device,
                memory_gib=p.memory_gib,
            )
            for p in spec.accelerator_pools
        ),
        links=_links(spec.links),
        cordoned=spec.cordoned,
    )


def fleet_site(fleet: EdgeFleet) -> problem.FleetSite:
    spec = fleet.spec
    return problem.FleetSite(
        name=fleet.metadata.name,
        region=spec.region,
        country=spec.country,
        device_class=spec.device_class,
        devices=spec.devices,
        opt_in_ratio=spec.opt_in_ratio,
        accelerator_model=spec.per_device.accelerator_model,
        tokens_per_second_per_device=spec.per_device.tokens_per_second,
        watts_per_device=spec.per_device.watts,
        memory_gib=spec.per_device.memory_gib,
        availability=tuple(
            problem.AvailabilityWindow(
                start=_clock(w.start), end=_clock(w.end), timezone=w.timezone, online_ratio=w.online_ratio
            )
            for w in spec.availability
        ),
        max_fleet_mw=spec.max_fleet_mw,
        uplink_latency_ms=spec.uplink.latency_ms,
        uplink_bandwidth_mbps=spec.uplink.bandwidth_mbps,
        links=_links(spec.links),
        price_per_mwh=spec.price_per_mwh,
        carbon_grams_per_kwh=spec.carbon_grams_per_kwh,
        cordoned=spec.cordoned,
    )


def workload_demand(workload: MeshWorkload) -> problem.WorkloadDemand:
    spec = workload.spec
    current = ()
    if workload.status is not None and workload.status.phase == "Placed":
        current = tuple(
            problem.CurrentAssignment(site=a.site, devices=a.devices) for a in workload.status.assignments
        )
    return problem.WorkloadDemand(
        key=workload.key,
        type=spec.type,
        accelerators=spec.accelerators,
        accelerator_models=tuple(spec.accelerator_models),
        tokens_per_second=spec.tokens_per_second,
        min_memory_gib=spec.min_memory_gib,
        max_latency_ms=spec.latency.max_ms if spec.latency else None,
        users=tuple(problem.UserRegion(u.region, u.weight) for u in spec.latency.users) if spec.latency else (),
        allowed_countries=tuple(spec.sovereignty.allowed_countries) if spec.sovereignty else (),
        denied_countries=tuple(spec.sovereignty.denied_countries) if spec.sovereignty else (),
        allow_fleets=spec.placement.allow_fleets,
        splittable=spec.placement.splittable,
        max_sites=spec.placement.max_sites,
        interruptible=spec.interruptible,
        priority=spec.priority,
        current=current,
    )


def to_mesh(snapshot: Snapshot) -> problem.Mesh:
    """The placement engine's view of the snapshot."""
    return problem.Mesh(
        factories=tuple(factory_site(f) for f in snapshot.factories),
        fleets=tuple(fleet_site(f) for f in snapshot.fleets),
        workloads=tuple(workload_demand(w) for w in snapshot.workloads),
        at=snapshot.at,
    )


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def condition(
    previous: Sequence[Condition], type_: str, status: str, reason: str, message: str,
    at: dt.datetime, generation: int | None,
) -> Condition:
    """A condition that keeps its lastTransitionTime while its status does not change."""
    before = next((c for c in previous if c.type == type_), None)
    transition = before.last_transition_time if before and before.status == status else _timestamp(at)
    return Condition(
        type=type_, status=status, reason=reason, message=message,
        last_transition_time=transition, observed_generation=generation,
    )


def _solver_figures(plan: Plan) -> SolverFigures:
    stats = plan.stats
    return SolverFigures(
        objective=stats.objective,
        bound=stats.bound,
        gap=round(stats.gap, 6),
        status=stats.status,
        solve_ms=round(stats.wall_ms, 1),
        fallback_used=stats.fallback_used,
    )


def workload_status(workload: MeshWorkload, decision: WorkloadDecision, plan: Plan, at: dt.datetime) -> MeshWorkloadStatus:
    generation = workload.metadata.generation
    previous = workload.status.conditions if workload.status else []
    placed = decision.phase == "Placed"
    sites = list(dict.fromkeys(a.site for a in decision.assignments))
    latencies = [a.latency_ms for a in decision.assignments if a.latency_ms is not None]
    return MeshWorkloadStatus(
        observed_generation=generation,
        phase=decision.phase,
        assignments=[
            Assignment(
                site=a.site,
                kind=a.kind,
                accelerator_model=a.accelerator_model,
                devices=a.devices,
                tokens_per_second=round(a.tokens_per_second, _RATE_DIGITS),
                power_mw=round(a.power_mw, _MW_DIGITS),
                latency_ms=round(a.latency_ms, _MS_DIGITS) if a.latency_ms is not None else None,
            )
            for a in decision.assignments
        ],
        sites=",".join(sites),
        power_mw=round(decision.power_mw, _MW_DIGITS),
        latency_ms=round(max(latencies), _MS_DIGITS) if latencies and workload.spec.latency else None,
        tokens_per_second=round(decision.tokens_per_second, _RATE_DIGITS),
        message=decision.message,
        solver=_solver_figures(plan),
        conditions=[
            condition(
                previous, "Placed", "True" if placed else "False",
                "Placed" if placed else decision.phase, decision.message or f"placed on {', '.join(sites)}",
                at, generation,
            )
        ],
    )


def site_status(usage: SiteUsage | None, generation: int | None, previous: Sequence[Condition], at: dt.datetime, fleet: bool) -> SiteStatus:
    if usage is None:  # the engine did not see the site (should not happen); say so
        return SiteStatus(
            observed_generation=generation,
            conditions=[condition(previous, "Ready", "Unknown", "NotPlanned", "site missing from the plan", at, generation)],
        )
    firm_free = max(0.0, usage.firm_mw_available - usage.firm_mw_used)
    flexible_free = max(0.0, usage.flexible_mw_available - usage.flexible_mw_used)
    return SiteStatus(
        observed_generation=generation,
        power=PowerStatus(
            firm_allocated_mw=round(usage.firm_mw_used, _MW_DIGITS),
            flexible_allocated_mw=round(usage.flexible_mw_used, _MW_DIGITS),
            allocated_mw=round(usage.power_mw_used, _MW_DIGITS),
            firm_available_mw=round(firm_free, _MW_DIGITS),
            flexible_available_mw=round(flexible_free, _MW_DIGITS),
            available_mw=round(firm_free + flexible_free, _MW_DIGITS),
        ),
        pools=[
            PoolStatus(model=p.model, devices_allocated=p.devices_used, devices_available=max(0, p.devices_total - p.devices_used))
            for p in usage.pools
        ],
        online_devices=usage.devices_total if fleet else None,
        tokens_per_second=round(usage.tokens_per_second, _RATE_DIGITS),
        tokens_per_joule=round(usage.tokens_per_joule, 6),
        workload_count=usage.workload_count,
        conditions=[condition(previous, "Ready", "True", "Planned", "capacity accounted in the current plan", at, generation)],
    )


NAME_CONFLICT_MESSAGE = (
    "an AIFactory has the same name and site names are unique across AIFactory and "
    "EdgeFleet: rename the fleet; it is left out of the plan until then"
)


def reconcile(
    snapshot: Snapshot, config: problem.SolverConfig | None = None, previous: Plan | None = None
) -> Outcome:
    """Plan the snapshot and compute every resource's status.

    ``previous`` is the plan of the last reconcile (``Outcome.plan``), if the caller
    kept it: when the sites are unchanged, the engine then re-solves only the
    workloads that changed, several times faster (see docs/placement.md).

    The API server lets an AIFactory and an EdgeFleet share a name, but a plan cannot
    tell them apart: such a fleet is left out and its status says why, and the rest
    of the mesh is planned as usual.
    """
    factory_names = {f.metadata.name for f in snapshot.factories}
    conflicting = [f for f in snapshot.fleets if f.metadata.name in factory_names]
    plannable = Snapshot(
        snapshot.factories,
        [f for f in snapshot.fleets if f.metadata.name not in factory_names],
        snapshot.workloads,
        snapshot.at,
    )
    plan = placement_plan(to_mesh(plannable), config or problem.SolverConfig(), previous)
    outcome = Outcome(plan=plan)
    for workload in snapshot.workloads:
        outcome.workloads[workload.key] = workload_status(workload, plan.workloads[workload.key], plan, snapshot.at)
    for sites, target, fleet in ((plannable.factories, outcome.factories, False), (plannable.fleets, outcome.fleets, True)):
        for site in sites:
            conditions = site.status.conditions if site.status else []
            target[site.metadata.name] = site_status(
                plan.sites.get(site.metadata.name), site.metadata.generation, conditions, snapshot.at, fleet
            )
    for site in conflicting:
        generation = site.metadata.generation
        conditions = site.status.conditions if site.status else []
        outcome.fleets[site.metadata.name] = SiteStatus(
            observed_generation=generation,
            conditions=[condition(conditions, "Ready", "False", "NameConflict", NAME_CONFLICT_MESSAGE, snapshot.at, generation)],
        )
    return outcome
