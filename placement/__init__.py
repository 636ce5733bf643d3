"""The placement engine: plain data in, decisions out.

Callers (the controller's reconcile core, ``meshctl plan``, benchmarks) build a
``placement.problem`` mesh and ask for a plan. Nothing here knows Kubernetes, kopf or
the HTTP API; the layering ``controller > placement > placement_ext`` is checked by
import-linter in the tests.

Modules, in pipeline order (each imports at run time only those before it, so there
is no cycle; ``tests/placement/test_package_description.py`` checks this list against
the package):
``problem`` and ``decisions`` (public input and output), ``capacity``, ``topology``,
``snapshot`` (the arrays of one solve), ``candidates`` (the (workload, column) pairs and
plan arithmetic), ``greedy``, ``kube_greedy`` (the floor), ``lp_bound``, ``bound``,
``lp_round``, ``cpsat``, ``trim``, ``solve`` (the one solve sequence), ``partition``
(huge meshes), ``explain``, ``assign``, ``basis`` (what a plan keeps for the next
one), ``warm`` (the incremental path's scope, preemption and rounds), ``report``
(``SolveStats`` built once from the stages' results), ``pipeline`` (cold, partitioned
and warm paths, :func:`plan`).
"""

from placement.decisions import (
    Assignment,
    FloorRepair,
    Plan,
    PoolUsage,
    SiteUsage,
    SolveStats,
    SolveStatus,
    WorkloadDecision,
)
from placement.pipeline import plan
from placement.problem import (
    AcceleratorPool,
    AvailabilityWindow,
    CurrentAssignment,
    FactorySite,
    FleetSite,
    Link,
    Mesh,
    ObjectivePolicy,
    SolverConfig,
    UserRegion,
    WorkBudgets,
    WorkloadDemand,
)

__all__ = [
    "AcceleratorPool",
    "Assignment",
    "AvailabilityWindow",
    "CurrentAssignment",
    "FactorySite",
    "FleetSite",
    "FloorRepair",
    "Link",
    "Mesh",
    "ObjectivePolicy",
    "Plan",
    "PoolUsage",
    "SiteUsage",
    "SolveStats",
    "SolveStatus",
    "SolverConfig",
    "UserRegion",
    "WorkBudgets",
    "WorkloadDecision",
    "WorkloadDemand",
    "plan",
]
