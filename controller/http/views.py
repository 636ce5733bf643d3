"""Pure functions from a reconcile (:class:`~controller.core.reconcile.Snapshot` and
:class:`~controller.core.reconcile.Outcome`) to the response models of
:mod:`controller.http.models`. No I/O, no clock: the same publication gives the same
documents, which the tests cross-check against ``reconcile`` run directly.

Where figures come from: site power and pools from the outcome's ``SiteStatus`` and the
plan's ``SiteUsage``; fleets' online devices over the next 24 hours from their
availability windows (:func:`controller.core.explanations.online_devices`, the
engine's own count); links from the sites' ``spec.links``; workloads from their
``MeshWorkloadStatus``; explanations from :func:`controller.core.explanations.explain`:
the plan's decision (counts per filter, feasible sites, message) as published, plus the
per-(site, pool) verdicts and costs of that one workload, computed on request on the
engine's mesh of every site and that workload alone. An explanation thus costs one
workload against every site (about a millisecond at 50 sites), not a rebuild of the
whole mesh. The engine is read only through :mod:`controller.core` (``controller.http``
may not import ``placement``: an import-linter contract).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from controller.api.models import Condition, SiteStatus
from controller.api.resources import AIFactory, EdgeFleet, MeshWorkload
from controller.core.conditions import timestamp
from controller.core.delivery import CONDITION_AVAILABLE, CONDITION_REACHABLE, LOCAL, target_of
from controller.core.explanations import SiteUsage, SolverConfig, explain, online_devices
from controller.core.reconcile import Outcome, Snapshot
from controller.core.statuses import PHASE_PENDING
from controller.http.models import (
    AssignmentView,
    CandidateView,
    ClusterView,
    ConditionView,
    ExplanationView,
    LinkView,
    MeshView,
    OnlinePoint,
    SitePool,
    SitePower,
    SiteView,
    SolveView,
    UserView,
    WorkloadDetail,
    WorkloadView,
)
from controller.http.source import Published

FORECAST_HOURS = 24


def _conditions(conditions: Iterable[Condition]) -> list[ConditionView]:
    return [ConditionView(type=c.type, status=c.status, reason=c.reason, message=c.message) for c in conditions]


def _pools(usage: SiteUsage | None) -> list[SitePool]:
    if usage is None:  # a fleet left out of the plan (name conflict)
        return []
    return [
        SitePool(model=p.model, devices_total=p.devices_total, devices_allocated=p.devices_used,
                 devices_available=max(0, p.devices_total - p.devices_used))
        for p in usage.pools
    ]


def online_forecast(fleet: EdgeFleet, at: dt.datetime, hours: int = FORECAST_HOURS) -> list[OnlinePoint]:
    """Devices online and opted in at ``at`` and each following hour (cordons aside)."""
    moments = [at + dt.timedelta(hours=hour) for hour in range(hours)]
    return [OnlinePoint(at=timestamp(moment), devices=devices)
            for moment, devices in zip(moments, online_devices(fleet, moments), strict=True)]


def site_view(site: AIFactory | EdgeFleet, status: SiteStatus | None, usage: SiteUsage | None,
              at: dt.datetime) -> SiteView:
    """One site as ``GET /api/v1/mesh`` shows it."""
    power = status.power if status is not None else None
    allocated = {
        "firm_allocated_mw": power.firm_allocated_mw if power else 0.0,
        "flexible_allocated_mw": power.flexible_allocated_mw if power else 0.0,
        "firm_available_mw": power.firm_available_mw if power else 0.0,
        "flexible_available_mw": power.flexible_available_mw if power else 0.0,
    }
    if isinstance(site, AIFactory):
        spec_power = site.spec.power
        budget = SitePower(firm_mw=spec_power.firm_mw, flexible_mw=spec_power.flexible_mw,
                           curtailed_mw=spec_power.curtailed_mw, **allocated)
        kind, forecast, online = "AIFactory", [], None
    else:
        budget = SitePower(firm_mw=site.spec.max_fleet_mw, flexible_mw=0.0, curtailed_mw=0.0, **allocated)
        kind, forecast = "EdgeFleet", online_forecast(site, at)
        online = status.online_devices if status is not None else None
    return SiteView(
        name=site.metadata.name, kind=kind, region=site.spec.region, country=site.spec.country,
        cordoned=site.spec.cordoned, power=budget, pools=_pools(usage), online_devices=online,
        online_devices_next24h=forecast,
        tokens_per_second=status.tokens_per_second if status is not None else 0.0,
        workload_count=status.workload_count if status is not None else 0,
        conditions=_conditions(status.conditions if status is not None else []),
        cluster=target_of(site),
    )


def site_views(snapshot: Snapshot, outcome: Outcome) -> list[SiteView]:
    """Every factory, then every fleet, in the snapshot's order."""
    usage = outcome.plan.sites
    views = [site_view(f, outcome.factories.get(f.metadata.name), usage.get(f.metadata.name), snapshot.at)
             for f in snapshot.factories]
    views += [site_view(f, outcome.fleets.get(f.metadata.name), usage.get(f.metadata.name), snapshot.at)
              for f in snapshot.fleets]
    return views


def mesh_view(published: Published) -> MeshView:
    snapshot = published.snapshot
    sites: list[AIFactory | EdgeFleet] = [*snapshot.factories, *snapshot.fleets]
    links = [
        LinkView(from_=site.metadata.name, to=link.to, latency_ms=link.latency_ms)
        for site in sites
        for link in site.spec.links
    ]
    regions = sorted({u.region for w in snapshot.workloads if w.spec.latency for u in w.spec.latency.users})
    return MeshView(version=published.version, at=timestamp(published.at),
                    sites=site_views(snapshot, published.outcome), links=links, user_regions=regions,
                    clusters=cluster_views(snapshot, published.outcome))


def _time(at: dt.datetime | None) -> str | None:
    return None if at is None else timestamp(at)


def cluster_views(snapshot: Snapshot, outcome: Outcome) -> list[ClusterView]:
    """Every member cluster: the MemberClusters in the snapshot's order, then the names
    sites give in ``spec.memberCluster`` without a MemberCluster (sorted). Health is what
    the snapshot observed; the message is the status's Reachable condition's when it has one."""
    served: dict[str, list[str]] = {}
    for site, target in snapshot.site_targets().items():
        if target != LOCAL:
            served.setdefault(target, []).append(site)
    defined = [c.metadata.name for c in snapshot.clusters]
    names = [*defined, *sorted(set(served) - set(defined))]
    views = []
    for name in dict.fromkeys(names):
        health = snapshot.observed.health(name)
        status = outcome.clusters.get(name)
        reachable = next((c for c in status.conditions if c.type == CONDITION_REACHABLE), None) if status else None
        views.append(ClusterView(
            name=name, state=health.state, reason=health.reason,
            message=reachable.message if reachable is not None else health.message,
            since=_time(health.since), last_seen=_time(health.last_seen),
            sites=sorted(status.sites if status is not None else served.get(name, [])),
            defined=name in defined,
        ))
    return views


def workload_view(workload: MeshWorkload, outcome: Outcome) -> WorkloadView:
    """One workload as its status says (a workload the plan has not seen shows Pending)."""
    status = outcome.workloads.get(workload.key)
    spec = workload.spec
    users = [UserView(region=u.region, weight=u.weight) for u in spec.latency.users] if spec.latency else []
    common = {
        "namespace": workload.metadata.namespace or "", "name": workload.metadata.name, "type": spec.type,
        "priority": spec.priority, "interruptible": spec.interruptible, "users": users,
    }
    if status is None:
        return WorkloadView(**common, phase=PHASE_PENDING, reason=PHASE_PENDING, message="", sites=[], assignments=[],
                            power_mw=0.0, tokens_per_second=0.0, latency_ms=None)
    placed = next((c for c in status.conditions if c.type == "Placed"), None)
    available = next((c for c in status.conditions if c.type == CONDITION_AVAILABLE), None)
    return WorkloadView(
        **common, phase=status.phase, reason=placed.reason if placed else status.phase, message=status.message,
        sites=[s for s in status.sites.split(",") if s],
        assignments=[
            AssignmentView(site=a.site, kind=a.kind, accelerator_model=a.accelerator_model, devices=a.devices,
                           power_mw=a.power_mw, tokens_per_second=a.tokens_per_second, latency_ms=a.latency_ms,
                           cluster=a.cluster, replicas=a.replicas, ready_replicas=a.ready_replicas,
                           available_replicas=a.available_replicas, delivery_message=a.delivery_message)
            for a in status.assignments
        ],
        power_mw=status.power_mw, tokens_per_second=status.tokens_per_second, latency_ms=status.latency_ms,
        ready=status.ready, available=_conditions([available])[0] if available is not None else None,
    )


def workload_views(snapshot: Snapshot, outcome: Outcome, phase: str | None = None,
                   namespace: str | None = None) -> list[WorkloadView]:
    views = [workload_view(w, outcome) for w in snapshot.workloads
             if namespace is None or w.metadata.namespace == namespace]
    return [v for v in views if phase is None or v.phase == phase]


def explanation(snapshot: Snapshot, outcome: Outcome, workload: MeshWorkload, config: SolverConfig) -> ExplanationView:
    """Why a workload is where it is: the plan's counts per filter, the sites passing
    every filter and the cost of each feasible (site, pool), computed for this workload
    alone on the snapshot's sites (:func:`controller.core.explanations.explain`)."""
    found = explain(snapshot, outcome, workload, config)
    return ExplanationView(
        rejections=found.rejections,
        feasible_site_count=found.feasible_site_count,
        feasible_sites=list(found.feasible_sites),
        candidates=[
            CandidateView(site=v.site, kind="AIFactory" if v.kind == "AIFactory" else "EdgeFleet",
                          accelerator_model=v.accelerator_model, devices=v.devices, latency_ms=v.latency_ms,
                          cost=v.cost)
            for v in found.candidates
        ],
        displaced_by=list(found.displaced_by),
        message=found.message,
    )


def workload_detail(published: Published, workload: MeshWorkload) -> WorkloadDetail:
    view = workload_view(workload, published.outcome)
    return WorkloadDetail(
        **view.model_dump(),
        explanation=explanation(published.snapshot, published.outcome, workload, published.config),
    )


def solve_view(version: int, at: dt.datetime, outcome: Outcome, solve_ms: float, warm: bool) -> SolveView:
    stats = outcome.plan.stats
    return SolveView(
        version=version, at=timestamp(at), status=str(stats.status), objective=stats.placed_priority_demand, bound=stats.bound,
        gap=stats.gap, solve_ms=round(solve_ms, 3), warm=warm, placed_workloads=stats.placed_workloads,
        workloads=len(outcome.workloads), greedy_placed_priority_demand=stats.greedy_placed_priority_demand,
        placed_priority_demand=stats.placed_priority_demand, wall_limit_hit=stats.wall_limit_hit,
        stop_reason=stats.stop_reason, bound_method=stats.bound_method, partitions=stats.partitions,
    )
