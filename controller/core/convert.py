"""Convert resources into the placement engine's plain data (``placement.problem``).

Called by :mod:`controller.core.reconcile`. One function per kind; the engine knows
nothing of Kubernetes, so names, units and defaults are carried over here, field by
field. A workload that is placed now passes its assignments as ``current``, which
feeds the engine's stability tier (placements do not move for nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

from controller.api.models import Link as LinkSpec
from controller.api.resources import AIFactory, EdgeFleet, MeshWorkload
from placement import problem

PHASE_PLACED = "Placed"


def _links(links: Sequence[LinkSpec]) -> tuple[problem.Link, ...]:
    return tuple(problem.Link(to=link.to, latency_ms=link.latency_ms, bandwidth_gbps=link.bandwidth_gbps) for link in links)


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def factory_site(factory: AIFactory, lost: bool = False, curtailed_mw: float | None = None) -> problem.FactorySite:
    """``lost``: its member cluster is lost, so it has no power to offer (and is cordoned).
    ``curtailed_mw``: the curtailment to plan with (grid events included, see
    :mod:`controller.core.grid`); default ``spec.power.curtailedMW``."""
    spec = factory.spec
    return problem.FactorySite(
        name=factory.metadata.name,
        region=spec.region,
        country=spec.country,
        firm_mw=0.0 if lost else spec.power.firm_mw,
        flexible_mw=0.0 if lost else spec.power.flexible_mw,
        curtailed_mw=0.0 if lost else (spec.power.curtailed_mw if curtailed_mw is None else curtailed_mw),
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
        cordoned=spec.cordoned or lost,
    )


def fleet_site(fleet: EdgeFleet, lost: bool = False) -> problem.FleetSite:
    """``lost``: its member cluster is lost, so no device is online (and it is cordoned)."""
    spec = fleet.spec
    return problem.FleetSite(
        name=fleet.metadata.name,
        region=spec.region,
        country=spec.country,
        device_class=spec.device_class,
        devices=0 if lost else spec.devices,
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
        cordoned=spec.cordoned or lost,
    )


def workload_demand(workload: MeshWorkload) -> problem.WorkloadDemand:
    spec = workload.spec
    current: tuple[problem.CurrentAssignment, ...] = ()
    if workload.status is not None and workload.status.phase == PHASE_PLACED:
        current = tuple(
            problem.CurrentAssignment(site=a.site, devices=a.devices) for a in workload.status.assignments
        )
    latency = spec.latency
    sovereignty = spec.sovereignty
    return problem.WorkloadDemand(
        key=workload.key,
        type=spec.type,
        accelerators=spec.accelerators,
        accelerator_models=tuple(spec.accelerator_models),
        tokens_per_second=spec.tokens_per_second,
        min_memory_gib=spec.min_memory_gib,
        max_latency_ms=latency.max_ms if latency else None,
        users=tuple(problem.UserRegion(u.region, u.weight) for u in latency.users) if latency else (),
        allowed_countries=tuple(sovereignty.allowed_countries) if sovereignty else (),
        denied_countries=tuple(sovereignty.denied_countries) if sovereignty else (),
        allow_fleets=spec.placement.allow_fleets,
        splittable=spec.placement.splittable,
        max_sites=spec.placement.max_sites,
        interruptible=spec.interruptible,
        priority=spec.priority,
        current=current,
    )


def to_mesh(
    factories: Sequence[AIFactory], fleets: Sequence[EdgeFleet], workloads: Sequence[MeshWorkload], at: dt.datetime,
    lost: Collection[str] = (), curtailed_mw: Mapping[str, float] | None = None,
) -> problem.Mesh:
    """The placement engine's view of the resources at time ``at``; the sites named in
    ``lost`` (their member cluster is lost) have no capacity; ``curtailed_mw`` gives a
    factory's planned curtailment when grid events change it."""
    planned = curtailed_mw or {}
    return problem.Mesh(
        factories=tuple(factory_site(f, f.metadata.name in lost, planned.get(f.metadata.name)) for f in factories),
        fleets=tuple(fleet_site(f, f.metadata.name in lost) for f in fleets),
        workloads=tuple(workload_demand(w) for w in workloads),
        at=at,
    )
