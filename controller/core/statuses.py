"""Statuses: the placement engine's decisions turned into the status of every resource.

Called by :mod:`controller.core.reconcile`. A MeshWorkload's status is a function of
its own spec, its own decision and its previous status only: mesh-wide solve figures
(objective, bound, gap, solve time) are never written into it, so one changed
workload does not rewrite every status in the cluster, and an unchanged mesh
rewrites none. Figures are rounded to a few digits for the same reason.

Phases: ``Placed``; ``Unschedulable`` (no site can take it whole); ``Preempted`` (it
was placed under its current spec and lost its place: to higher-priority work, a
curtailment, a cordon, a fleet going offline or a removed site); ``Pending`` (not
solved yet: the CRD's default phase, which no status computed here has; the HTTP API
shows it for a workload the plan has not seen). A Preempted workload
stays Preempted, with the message of the moment it lost its place, until it is placed
again or its spec changes.

Sites carry conditions: ``Ready``, ``Cordoned``, and ``Curtailed`` and
``GridSourceStale`` (factories; grid events included, see :mod:`controller.core.grid`)
or ``Offline`` (fleets, outside their availability windows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from controller.api.models import (
    Assignment,
    Condition,
    MemberClusterStatus,
    MeshWorkloadStatus,
    PoolStatus,
    PowerStatus,
    SiteStatus,
    WorkloadPhase,
)
from controller.api.resources import API_VERSION, AIFactory, EdgeFleet, MemberCluster, MeshWorkload, Resource
from controller.core.conditions import condition, timestamp
from controller.core.delivery import CONDITION_REACHABLE, LOCAL, ClusterHealth, lost_message
from controller.core.grid import FactoryGrid
from placement.decisions import KIND_FACTORY, SiteUsage, WorkloadDecision
from placement.decisions import Assignment as PlannedAssignment

PHASE_PENDING: Final = "Pending"
PHASE_PLACED: Final = "Placed"
PHASE_UNSCHEDULABLE: Final = "Unschedulable"
PHASE_PREEMPTED: Final = "Preempted"

CONDITION_PLACED = "Placed"
CONDITION_READY = "Ready"
CONDITION_CORDONED = "Cordoned"
CONDITION_CURTAILED = "Curtailed"
CONDITION_OFFLINE = "Offline"
CONDITION_GRID_SOURCE_STALE = "GridSourceStale"

# Statuses are stored as JSON: short, stable figures make an unchanged plan an
# unchanged status.
_MW_DIGITS = 4
_MS_DIGITS = 2
_RATE_DIGITS = 3
_TOKENS_PER_JOULE_DIGITS = 6

NAME_CONFLICT_MESSAGE = (
    "an AIFactory has the same name and site names are unique across AIFactory and "
    "EdgeFleet: rename the fleet; it is left out of the plan until then"
)


@dataclass(frozen=True)
class SiteFacts:
    """What a Preempted message may say about the sites a workload was on."""

    factories: Mapping[str, AIFactory]
    fleets: Mapping[str, EdgeFleet]
    usage: Mapping[str, SiteUsage]
    lost: Mapping[str, str] = field(default_factory=dict)  # site -> why its member cluster is lost
    grid: Mapping[str, FactoryGrid] = field(default_factory=dict)  # factory -> curtailment planned and in force


def _lost_place_reason(site: str, workload: MeshWorkload, facts: SiteFacts) -> str | None:
    factory = facts.factories.get(site)
    fleet = facts.fleets.get(site)
    if factory is None and fleet is None:
        return f"site {site} was removed"
    if site in facts.lost:
        return facts.lost[site]
    spec = factory.spec if factory is not None else fleet.spec  # type: ignore[union-attr]
    if spec.cordoned:
        return f"{site} is cordoned"
    grid = facts.grid.get(site)
    planned = grid.planned_mw if grid is not None else (factory.spec.power.curtailed_mw if factory else 0.0)
    if factory is not None and workload.spec.interruptible and planned > 0:
        power = factory.spec.power
        reason = f"{site} is curtailed by {planned:,.0f} MW of its {power.flexible_mw:,.0f} MW flexible power"
        if grid is not None and grid.driver is not None:
            reason += f" for grid event {grid.driver}"
        return reason
    usage = facts.usage.get(site)
    if fleet is not None and usage is not None and usage.devices_total == 0:
        return f"fleet {site} is offline (outside its availability windows)"
    return None


def preempted_message(
    workload: MeshWorkload, decision: WorkloadDecision, previous: MeshWorkloadStatus, facts: SiteFacts
) -> str:
    """Why a placed workload lost its place, then why it fits nowhere else now."""
    sites = list(dict.fromkeys(a.site for a in previous.assignments))
    causes = [reason for site in sites if (reason := _lost_place_reason(site, workload, facts))]
    displaced_by = list(decision.displaced_by)
    if displaced_by:
        shown = ", ".join(displaced_by[:3]) + (f" and {len(displaced_by) - 3} more" if len(displaced_by) > 3 else "")
        causes.append(f"its capacity went to higher-priority {shown}")
    head = f"preempted from {', '.join(sites) or 'its sites'}"
    head += ": " + "; ".join(causes) if causes else ""
    return f"{head}. Now: {decision.status_message}" if decision.status_message else head


def _assignment(a: PlannedAssignment) -> Assignment:
    mean = a.mean_latency_ms
    return Assignment(
        site=a.site,
        kind="AIFactory" if a.kind == KIND_FACTORY else "EdgeFleet",
        accelerator_model=a.accelerator_model,
        devices=a.devices,
        tokens_per_second=round(a.tokens_per_second, _RATE_DIGITS),
        power_mw=round(a.power_mw, _MW_DIGITS),
        latency_ms=round(a.latency_ms, _MS_DIGITS) if a.latency_ms is not None else None,
        mean_latency_ms=round(mean, _MS_DIGITS) if mean is not None else None,
    )


def _phase_and_message(
    workload: MeshWorkload, decision: WorkloadDecision, facts: SiteFacts
) -> tuple[WorkloadPhase, str]:
    if decision.assignments:
        return PHASE_PLACED, decision.status_message
    previous = workload.status
    same_spec = previous is not None and previous.observed_generation == workload.metadata.generation
    if previous is not None and same_spec and previous.phase == PHASE_PLACED:
        return PHASE_PREEMPTED, preempted_message(workload, decision, previous, facts)
    if previous is not None and same_spec and previous.phase == PHASE_PREEMPTED:
        return PHASE_PREEMPTED, previous.message  # what happened then stays the story
    return PHASE_UNSCHEDULABLE, decision.status_message


def reads_only_its_own(workload: MeshWorkload, decision: WorkloadDecision) -> bool:
    """Whether :func:`workload_status` reads nothing but the workload and its decision
    (and the time, for a condition that changes): every case except a workload placed
    under this spec and now not, whose Preempted message says what happened to its
    sites (``SiteFacts``)."""
    previous = workload.status
    return bool(decision.assignments) or previous is None or previous.phase != PHASE_PLACED \
        or previous.observed_generation != workload.metadata.generation


def workload_status(
    workload: MeshWorkload, decision: WorkloadDecision, facts: SiteFacts, at: dt.datetime
) -> MeshWorkloadStatus:
    """The status of one workload after a solve (see the module docstring)."""
    generation = workload.metadata.generation
    previous_conditions = workload.status.conditions if workload.status else []
    phase, message = _phase_and_message(workload, decision, facts)
    placed = phase == PHASE_PLACED
    assignments = [_assignment(a) for a in decision.assignments] if placed else []
    sites = list(dict.fromkeys(a.site for a in assignments))
    latencies = [a.latency_ms for a in assignments if a.latency_ms is not None]
    return MeshWorkloadStatus(
        observed_generation=generation,
        phase=phase,
        assignments=assignments,
        sites=",".join(sites),
        power_mw=round(sum(a.power_mw for a in decision.assignments), _MW_DIGITS) if placed else 0.0,
        latency_ms=max(latencies) if latencies else None,
        tokens_per_second=round(sum(a.tokens_per_second for a in decision.assignments), _RATE_DIGITS)
        if placed else 0.0,
        message=message,
        conditions=[condition(previous_conditions, CONDITION_PLACED, placed, phase, message, at, generation)],
    )


def _reachable_condition(
    previous: Sequence[Condition], target: str, health: ClusterHealth, at: dt.datetime, generation: int | None
) -> Condition:
    if health.state == "Reachable":
        return condition(previous, CONDITION_REACHABLE, True, "Reachable", f"member cluster {target} answers",
                         at, generation)
    if health.state == "Lost":
        return condition(previous, CONDITION_REACHABLE, False, "Lost", lost_message(target, health), at, generation)
    if health.state == "Unknown":
        # not probed yet (a new leader): said, never acted on
        before = next((c for c in previous if c.type == CONDITION_REACHABLE), None)
        if before is not None:
            return before
        return Condition(type=CONDITION_REACHABLE, status="Unknown", reason="Unknown",
                         message=f"member cluster {target} not probed yet", last_transition_time=timestamp(at),
                         observed_generation=generation)
    return condition(previous, CONDITION_REACHABLE, False, health.reason,
                     f"member cluster {target}: {health.message or health.reason}", at, generation)


def _site_conditions(
    site: AIFactory | EdgeFleet, usage: SiteUsage, at: dt.datetime, health: ClusterHealth | None = None,
    grid: FactoryGrid | None = None, stale_events: Sequence[str] = (),
) -> list[Condition]:
    generation = site.metadata.generation
    previous = site.status.conditions if site.status else []
    cordoned = site.spec.cordoned
    conditions = [
        condition(
            previous, CONDITION_CORDONED, cordoned, "Cordoned" if cordoned else "Schedulable",
            "nothing is placed here; placed workloads move elsewhere" if cordoned else "", at, generation,
        )
    ]
    not_ready = "Cordoned" if cordoned else ""
    if isinstance(site, AIFactory):
        conditions += _factory_grid_conditions(site, previous, at, grid, stale_events)
    else:
        offline = usage.devices_total == 0
        windows = ", ".join(f"{w.start}-{w.end} {w.timezone}" for w in site.spec.availability)
        message = (
            f"no device online: outside its availability windows ({windows})" if offline
            else f"{usage.devices_total:,} devices online"
        )
        conditions.append(
            condition(previous, CONDITION_OFFLINE, offline, "OutsideAvailabilityWindows" if offline else "Online",
                      message, at, generation)
        )
        not_ready = not_ready or ("Offline" if offline else "")
    target = site.spec.member_cluster or LOCAL
    if target != LOCAL and health is not None:
        conditions.append(_reachable_condition(previous, target, health, at, generation))
        if health.state == "Lost":
            not_ready = "ClusterLost"
    conditions.insert(
        0,
        condition(
            previous, CONDITION_READY, not not_ready, not_ready or "Schedulable",
            "" if not not_ready else f"no new placements: {_NOT_READY_WORDS.get(not_ready, not_ready.lower())}",
            at, generation,
        ),
    )
    return conditions


_NOT_READY_WORDS = {"ClusterLost": "its member cluster is lost"}


def _factory_grid_conditions(
    factory: AIFactory, previous: Sequence[Condition], at: dt.datetime, grid: FactoryGrid | None,
    stale_events: Sequence[str],
) -> list[Condition]:
    """``Curtailed`` (the curtailment in force, and what is being prepared for), and
    ``GridSourceStale`` while an event's VTN cannot be read."""
    generation = factory.metadata.generation
    power = factory.spec.power
    in_force = grid.in_force_mw if grid is not None else power.curtailed_mw
    planned = grid.planned_mw if grid is not None else in_force
    curtailed = in_force > 0
    usable = power.firm_mw + max(0.0, power.flexible_mw - in_force)
    message = (
        f"{in_force:,.1f} of {power.flexible_mw:,.1f} MW flexible power curtailed; {usable:,.1f} MW usable"
        if curtailed else f"{usable:,.1f} MW usable"
    )
    by_event = grid is not None and grid.in_force_by is not None
    if by_event and grid is not None:
        message += f" (grid event {grid.in_force_by})"
    if grid is not None and grid.driver is not None and planned > in_force:
        message += (f"; preparing for grid event {grid.driver}: interruptible work planned within "
                    f"{power.firm_mw + power.flexible_mw - planned:,.1f} MW")
    if grid is not None and grid.limit_mw is not None and grid.firm_shortfall_mw > 0:
        message += f"; import limit {grid.limit_mw:,.1f} MW is below firm power: firm work is kept"
    reason = ("GridEvent" if by_event else "GridCurtailment") if curtailed else "NotCurtailed"
    conditions = [condition(previous, CONDITION_CURTAILED, curtailed, reason, message, at, generation)]
    if stale_events or any(c.type == CONDITION_GRID_SOURCE_STALE for c in previous):
        stale = bool(stale_events)
        conditions.append(condition(
            previous, CONDITION_GRID_SOURCE_STALE, stale, "VtnUnreachable" if stale else "VtnReachable",
            f"the VTN of grid event(s) {', '.join(stale_events)} cannot be read: their curtailment is kept as "
            "last read" if stale else "every grid event's source is read", at, generation))
    return conditions


def site_status(
    site: AIFactory | EdgeFleet, usage: SiteUsage, at: dt.datetime, health: ClusterHealth | None = None,
    grid: FactoryGrid | None = None, stale_events: Sequence[str] = (),
) -> SiteStatus:
    """Power and devices allocated and free at one site, and its conditions (with
    ``Reachable`` when the site is delivered to a member cluster whose ``health`` is given)."""
    firm_free = max(0.0, usage.firm_mw_available - usage.firm_mw_used)
    flexible_free = max(0.0, usage.flexible_mw_available - usage.flexible_mw_used)
    return SiteStatus(
        observed_generation=site.metadata.generation,
        power=PowerStatus(
            firm_allocated_mw=round(usage.firm_mw_used, _MW_DIGITS),
            flexible_allocated_mw=round(usage.flexible_mw_used, _MW_DIGITS),
            allocated_mw=round(usage.power_mw_used, _MW_DIGITS),
            firm_available_mw=round(firm_free, _MW_DIGITS),
            flexible_available_mw=round(flexible_free, _MW_DIGITS),
            available_mw=round(firm_free + flexible_free, _MW_DIGITS),
        ),
        pools=[
            PoolStatus(model=p.model, devices_allocated=p.devices_used,
                       devices_available=max(0, p.devices_total - p.devices_used))
            for p in usage.pools
        ],
        online_devices=usage.devices_total if isinstance(site, EdgeFleet) else None,
        tokens_per_second=round(usage.tokens_per_second, _RATE_DIGITS),
        tokens_per_joule=round(usage.tokens_per_joule, _TOKENS_PER_JOULE_DIGITS),
        workload_count=usage.workload_count,
        conditions=_site_conditions(site, usage, at, health, grid, stale_events),
    )


def cluster_status(cluster: MemberCluster, sites: Sequence[str], health: ClusterHealth, at: dt.datetime) -> MemberClusterStatus:
    """A member cluster's status: the sites it runs and whether it answers. Written on
    transitions only: ``lastSeenTime`` is set while it is unreachable, not refreshed
    while it answers (the condition says since when)."""
    generation = cluster.metadata.generation
    previous = cluster.status.conditions if cluster.status else []
    name = cluster.metadata.name
    reachable = _reachable_condition(previous, name, health, at, generation)
    last_seen = timestamp(health.last_seen) if health.state in ("Unreachable", "Lost") and health.last_seen else None
    return MemberClusterStatus(
        observed_generation=generation, sites=sorted(sites), last_seen_time=last_seen, conditions=[reachable],
    )


def name_conflict_status(fleet: EdgeFleet, at: dt.datetime) -> SiteStatus:
    """A fleet named like a factory: left out of the plan, and it says why."""
    generation = fleet.metadata.generation
    previous = fleet.status.conditions if fleet.status else []
    return SiteStatus(
        observed_generation=generation,
        conditions=[condition(previous, CONDITION_READY, False, "NameConflict", NAME_CONFLICT_MESSAGE, at, generation)],
    )


REFUSED_REASON = "InvalidSpec"


def refused_status(
    kind: str, generation: int | None, previous: Sequence[Condition], problems: Sequence[str], at: dt.datetime
) -> MeshWorkloadStatus | SiteStatus | MemberClusterStatus:
    """The status of an object the API server stored but the core cannot read (an older
    CRD let it through, or a rule only the models check): it is left out of the plan,
    and its status says why, field by field, instead of the operator failing."""
    message = "left out of the plan: " + "; ".join(problems)
    if kind == "MemberCluster":
        return MemberClusterStatus(
            observed_generation=generation,
            conditions=[condition(previous, CONDITION_REACHABLE, False, REFUSED_REASON, message, at, generation)],
        )
    if kind == "MeshWorkload":
        return MeshWorkloadStatus(
            observed_generation=generation, phase=PHASE_UNSCHEDULABLE, message=message,
            conditions=[condition(previous, CONDITION_PLACED, False, REFUSED_REASON, message, at, generation)],
        )
    return SiteStatus(
        observed_generation=generation,
        conditions=[condition(previous, CONDITION_READY, False, REFUSED_REASON, message, at, generation)],
    )


def status_object(
    resource: Resource[Any, Any], status: MeshWorkloadStatus | SiteStatus | MemberClusterStatus
) -> dict[str, Any]:
    """The object the operator sends to ``/status``: identity and status, API names."""
    metadata = {"name": resource.metadata.name}
    if resource.metadata.namespace:
        metadata["namespace"] = resource.metadata.namespace
    return {"apiVersion": API_VERSION, "kind": resource.kind, "metadata": metadata, "status": status.to_api()}
