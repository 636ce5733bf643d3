"""Why one workload is where it is, and the other engine figures the HTTP API shows.

Called by :mod:`controller.http.views` (``GET /api/v1/workloads/{namespace}/{name}``
and ``GET /api/v1/mesh``), so the API reads the engine only through the core (an
import-linter contract forbids ``controller.http`` to import ``placement``): this
module also re-exports the engine types the API names, :class:`SolverConfig` (what a
publication was planned with) and :class:`SiteUsage` (a site's share of the plan).

An explanation is served from the published reconcile (its snapshot and outcome):
the decision's counts per filter, feasible sites, ``displaced_by`` and message come
from the plan as it is; the per-(site, pool) verdicts and costs are computed on
request by :func:`placement.explain.column_verdicts` on the engine's mesh of every
site the plan saw (lost sites without capacity, planned curtailments, fleets named
like a factory left out, as :func:`controller.core.reconcile.reconcile` builds it)
and ONLY the workload asked about. One request therefore costs what one workload
costs: one row against every column, whatever the number of other workloads.

The verdicts are the same as on the whole mesh: they are per-pair filter evaluations
on the empty mesh, and nothing in a pair reads another workload. The snapshot's
country and model indices, its energy tiers and reference tokens/s are interned from
the sites alone; its latency matrix has a row per region named anywhere, and a row
(a shortest path over the sites' links) does not depend on which other regions are
present. ``tests/controller/core/test_explanations.py`` checks it on the examples and
on synthetic meshes. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from controller.api.resources import EdgeFleet, MeshWorkload
from controller.core.convert import fleet_site, to_mesh
from controller.core.delivery import lost_sites
from controller.core.reconcile import Outcome, Snapshot
from placement import problem
from placement.capacity import fleet_effective_devices
from placement.decisions import SiteUsage
from placement.explain import ColumnVerdict, column_verdicts
from placement.problem import SolverConfig

__all__ = [
    "ColumnVerdict",
    "Explanation",
    "SiteUsage",
    "SolverConfig",
    "explain",
    "online_devices",
    "plan_mesh",
    "verdicts",
]


@dataclass(frozen=True)
class Explanation:
    """Why a workload is where it is. ``rejections``, ``feasible_site_count``,
    ``displaced_by`` and ``message`` are the plan's decision; ``candidates`` are the
    (site, pool) pairs passing every filter, cheapest first (then by site and model),
    and ``feasible_sites`` the sites with one, in the mesh's order (factories, then
    fleets)."""

    rejections: dict[str, int]
    feasible_site_count: int
    feasible_sites: tuple[str, ...]
    candidates: tuple[ColumnVerdict, ...]
    displaced_by: tuple[str, ...]
    message: str


def plan_mesh(snapshot: Snapshot, workloads: Sequence[MeshWorkload]) -> problem.Mesh:
    """The engine's mesh of the snapshot's sites as the reconcile plans them (sites of
    a lost member cluster without capacity, curtailment planned for grid events, a
    fleet named like a factory left out), with ``workloads`` only."""
    factory_names = {f.metadata.name for f in snapshot.factories}
    fleets = [f for f in snapshot.fleets if f.metadata.name not in factory_names]
    lost = lost_sites([*snapshot.factories, *fleets], snapshot.observed)
    planned = {name: g.planned_mw for name, g in snapshot.grid().items() if g.planned_mw != g.manual_mw}
    return to_mesh(snapshot.factories, fleets, workloads, snapshot.at, lost=lost, curtailed_mw=planned)


def verdicts(snapshot: Snapshot, workload: MeshWorkload, config: SolverConfig) -> list[ColumnVerdict]:
    """Every (site, pool) column as the filters and the cost see ``workload``, in the
    engine's column order, computed on the mesh of every site and this workload alone."""
    return column_verdicts(plan_mesh(snapshot, [workload]), workload.key, config)


def explain(snapshot: Snapshot, outcome: Outcome, workload: MeshWorkload, config: SolverConfig) -> Explanation:
    """The explanation of ``workload`` (one of the snapshot's) in the published
    ``outcome``; a workload the plan has not seen has no verdicts."""
    decision = outcome.plan.workloads.get(workload.key)
    if decision is None:
        return Explanation({}, 0, (), (), (), "not part of the plan")
    feasible = [v for v in verdicts(snapshot, workload, config) if not v.rejected_by]
    candidates = sorted(feasible, key=lambda v: (v.cost, v.site, v.accelerator_model))
    return Explanation(
        rejections=dict(decision.rejections),
        feasible_site_count=decision.feasible_sites,
        feasible_sites=tuple(dict.fromkeys(v.site for v in feasible)),
        candidates=tuple(candidates),
        displaced_by=tuple(decision.displaced_by),
        message=decision.message,
    )


def online_devices(fleet: EdgeFleet, moments: Sequence[dt.datetime]) -> list[int]:
    """The fleet's devices online and opted in at each of ``moments`` (cordons and
    lost member clusters aside), from its availability windows as the engine reads them."""
    site = fleet_site(fleet)
    return [fleet_effective_devices(site, moment) for moment in moments]
