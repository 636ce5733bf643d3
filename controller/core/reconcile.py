"""The reconcile core: a snapshot of resources in, a plan and every status out.

Pure and shared: the operator calls it with what the API server holds, ``meshctl plan``
with manifests read from files and the HTTP API's what-if with a modified copy, so all
three compute exactly the same statuses. Steps: convert the resources into the
engine's problem (:mod:`controller.core.convert`), plan (``placement.plan``, warm when
the previous plan is given), then statuses (:mod:`controller.core.statuses`). What
must be written follows from :mod:`controller.core.changes`. No I/O happens here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.api.models import GridEventStatus, MemberClusterStatus, MeshWorkloadStatus, SiteStatus
from controller.api.resources import AIFactory, EdgeFleet, GridEvent, MemberCluster, MeshWorkload
from controller.core.convert import to_mesh
from controller.core.delivery import LOCAL, NOTHING_OBSERVED, Observed, lost_sites, target_of, with_readiness
from controller.core.grid import FactoryGrid, grid_by_factory
from controller.core.grid_statuses import grid_event_status, moved_for_events, stale_since
from controller.core.statuses import (
    SiteFacts,
    cluster_status,
    name_conflict_status,
    reads_only_its_own,
    site_status,
    workload_status,
)
from placement import plan as placement_plan
from placement import problem
from placement.decisions import Plan, WorkloadDecision


@dataclass(frozen=True)
class Snapshot:
    """Everything one reconcile looks at, with the time the plan is made for."""

    factories: Sequence[AIFactory]
    fleets: Sequence[EdgeFleet]
    workloads: Sequence[MeshWorkload]
    at: dt.datetime
    clusters: Sequence[MemberCluster] = ()
    # what the clusters said (member health, Deployments' readiness): the operator's
    # delivery layer fills it; meshctl and what-if see nothing observed
    observed: Observed = NOTHING_OBSERVED
    # scheduled curtailments (GridEvents), of any factory; see controller.core.grid
    grid_events: Sequence[GridEvent] = ()

    def grid(self) -> dict[str, FactoryGrid]:
        """Factory name -> its curtailment in force and planned at ``at``."""
        return grid_by_factory(self.factories, self.grid_events, self.at)

    def site_targets(self) -> dict[str, str]:
        """Site name -> where its work is delivered (``local`` or a MemberCluster)."""
        sites: list[AIFactory | EdgeFleet] = [*self.factories, *self.fleets]
        return {s.metadata.name: target_of(s) for s in sites}


@dataclass
class Outcome:
    """The plan (with its mesh-wide solve figures) and the status of every resource.

    Statuses are keyed like the resources: ``namespace/name`` for workloads, ``name``
    for sites.
    """

    plan: Plan
    workloads: dict[str, MeshWorkloadStatus] = field(default_factory=dict)
    factories: dict[str, SiteStatus] = field(default_factory=dict)
    fleets: dict[str, SiteStatus] = field(default_factory=dict)
    clusters: dict[str, MemberClusterStatus] = field(default_factory=dict)
    grid_events: dict[str, GridEventStatus] = field(default_factory=dict)
    # per workload key: the parsed workload and decision its placement status was built
    # from, and that status (before readiness): the next outcome_of reuses it when both
    # are the same objects (an unchanged workload the warm path kept), instead of
    # building 10,000 statuses for a change of one. Only statuses that read nothing else.
    status_memo: dict[str, tuple[MeshWorkload, WorkloadDecision, MeshWorkloadStatus]] = field(
        default_factory=dict, repr=False, compare=False)


def reconcile(
    snapshot: Snapshot, config: problem.SolverConfig | None = None, previous: Plan | None = None,
    previous_outcome: Outcome | None = None,
) -> Outcome:
    """Plan the snapshot and compute every resource's status.

    ``previous`` is the plan of the last reconcile (``Outcome.plan``), if the caller
    kept it: when the sites are unchanged, the engine then re-solves only the
    workloads that changed (see docs/placement.md). ``previous_outcome`` (the last
    ``Outcome``, if kept) lets :func:`outcome_of` reuse the statuses of the workloads
    nothing changed for.

    The API server lets an AIFactory and an EdgeFleet share a name, but a plan cannot
    tell them apart: such a fleet is left out and its status says why, and the rest
    of the mesh is planned as usual.
    """
    fleets, _ = _fleets(snapshot)
    lost = lost_sites([*snapshot.factories, *fleets], snapshot.observed)
    planned = {name: g.planned_mw for name, g in snapshot.grid().items() if g.planned_mw != g.manual_mw}
    mesh = to_mesh(snapshot.factories, fleets, snapshot.workloads, snapshot.at, lost=lost, curtailed_mw=planned)
    plan = placement_plan(mesh, config or problem.SolverConfig(), previous)
    return outcome_of(snapshot, plan, previous_outcome)


def _fleets(snapshot: Snapshot) -> tuple[list[EdgeFleet], list[EdgeFleet]]:
    """(the fleets planned, the fleets left out because a factory has their name)."""
    factory_names = {f.metadata.name for f in snapshot.factories}
    return (
        [f for f in snapshot.fleets if f.metadata.name not in factory_names],
        [f for f in snapshot.fleets if f.metadata.name in factory_names],
    )


def outcome_of(snapshot: Snapshot, plan: Plan, previous: Outcome | None = None) -> Outcome:
    """Every status, from ``plan`` (made for these specs) and what ``snapshot`` observed.

    The operator calls it alone, without planning again, when only what the clusters
    say has changed (a Deployment became ready, a member stopped answering): statuses
    follow, the placement does not move. With ``previous`` (the last outcome), a
    workload whose parsed object and decision are the very objects its last placement
    status was built from gets that status again (``Outcome.status_memo``)."""
    fleets, conflicting = _fleets(snapshot)
    observed = snapshot.observed
    lost = lost_sites([*snapshot.factories, *fleets], observed)
    outcome = Outcome(plan=plan)
    grid = snapshot.grid()
    facts = SiteFacts(
        factories={f.metadata.name: f for f in snapshot.factories},
        fleets={f.metadata.name: f for f in fleets},
        usage=plan.sites,
        lost=lost,
        grid=grid,
    )
    targets = snapshot.site_targets()
    memo = previous.status_memo if previous is not None else {}
    for workload in snapshot.workloads:
        decision = plan.workloads[workload.key]
        seen = memo.get(workload.key)
        if seen is not None and seen[0] is workload and seen[1] is decision:
            status = seen[2]
        else:
            status = workload_status(workload, decision, facts, snapshot.at)
        if reads_only_its_own(workload, decision):
            outcome.status_memo[workload.key] = (workload, decision, status)
        outcome.workloads[workload.key] = with_readiness(workload, status, targets, observed, snapshot.at)
    for factory in snapshot.factories:
        name = factory.metadata.name
        outcome.factories[name] = site_status(
            factory, plan.sites[name], snapshot.at, observed.health(target_of(factory)), grid.get(name),
            stale_events=[e.metadata.name for e in snapshot.grid_events
                          if e.spec.factory == name and stale_since(e) is not None and not e.spec.cancelled],
        )
    moved = moved_for_events(snapshot.workloads, outcome.workloads, grid)
    for event in snapshot.grid_events:
        outcome.grid_events[event.metadata.name] = grid_event_status(
            event, facts.factories.get(event.spec.factory), snapshot.at, moved.get(event.metadata.name, ()))
    for fleet in fleets:
        outcome.fleets[fleet.metadata.name] = site_status(
            fleet, plan.sites[fleet.metadata.name], snapshot.at, observed.health(target_of(fleet))
        )
    for fleet in conflicting:
        outcome.fleets[fleet.metadata.name] = name_conflict_status(fleet, snapshot.at)
    served: dict[str, list[str]] = {}
    for site, target in targets.items():
        if target != LOCAL:
            served.setdefault(target, []).append(site)
    for cluster in snapshot.clusters:
        name = cluster.metadata.name
        outcome.clusters[name] = cluster_status(cluster, served.get(name, []), observed.health(name), snapshot.at)
    return outcome
