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

from controller.api.models import MeshWorkloadStatus, SiteStatus
from controller.api.resources import AIFactory, EdgeFleet, MeshWorkload
from controller.core.convert import to_mesh
from controller.core.statuses import SiteFacts, name_conflict_status, site_status, workload_status
from placement import plan as placement_plan
from placement import problem
from placement.decisions import Plan


@dataclass(frozen=True)
class Snapshot:
    """Everything one reconcile looks at, with the time the plan is made for."""

    factories: Sequence[AIFactory]
    fleets: Sequence[EdgeFleet]
    workloads: Sequence[MeshWorkload]
    at: dt.datetime


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


def reconcile(
    snapshot: Snapshot, config: problem.SolverConfig | None = None, previous: Plan | None = None
) -> Outcome:
    """Plan the snapshot and compute every resource's status.

    ``previous`` is the plan of the last reconcile (``Outcome.plan``), if the caller
    kept it: when the sites are unchanged, the engine then re-solves only the
    workloads that changed (see docs/placement.md).

    The API server lets an AIFactory and an EdgeFleet share a name, but a plan cannot
    tell them apart: such a fleet is left out and its status says why, and the rest
    of the mesh is planned as usual.
    """
    factory_names = {f.metadata.name for f in snapshot.factories}
    conflicting = [f for f in snapshot.fleets if f.metadata.name in factory_names]
    fleets = [f for f in snapshot.fleets if f.metadata.name not in factory_names]
    mesh = to_mesh(snapshot.factories, fleets, snapshot.workloads, snapshot.at)
    plan = placement_plan(mesh, config or problem.SolverConfig(), previous)
    outcome = Outcome(plan=plan)
    facts = SiteFacts(
        factories={f.metadata.name: f for f in snapshot.factories},
        fleets={f.metadata.name: f for f in fleets},
        usage=plan.sites,
    )
    for workload in snapshot.workloads:
        outcome.workloads[workload.key] = workload_status(
            workload, plan.workloads[workload.key], facts, snapshot.at
        )
    for factory in snapshot.factories:
        outcome.factories[factory.metadata.name] = site_status(factory, plan.sites[factory.metadata.name], snapshot.at)
    for fleet in fleets:
        outcome.fleets[fleet.metadata.name] = site_status(fleet, plan.sites[fleet.metadata.name], snapshot.at)
    for fleet in conflicting:
        outcome.fleets[fleet.metadata.name] = name_conflict_status(fleet, snapshot.at)
    return outcome
